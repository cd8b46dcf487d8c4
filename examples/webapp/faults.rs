//! The faults that `/crash`, `/exit` and `/leak` cause on purpose, for trying a
//! supervisor's restart policies and a container's memory limit by hand.

use std::str::FromStr;

use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, Signal};

use crate::state::App;

/// A signal named like `SEGV`, `SIGSEGV`, `segv` or `11`, refused if its default action
/// does not end a process (CHLD, CONT, URG, WINCH, and the stop signals).
pub fn parse_signal(text: &str) -> Result<Signal, String> {
    let signal = match text.parse::<i32>() {
        Ok(number) => Signal::try_from(number).ok(),
        Err(_) => {
            let upper = text.to_ascii_uppercase();
            let name = if upper.starts_with("SIG") {
                upper
            } else {
                format!("SIG{upper}")
            };
            Signal::from_str(&name).ok()
        }
    }
    .ok_or_else(|| format!("{text:?} is not a signal; write e.g. SEGV, ABRT, KILL or 9"))?;
    let ends_the_process = !matches!(
        signal,
        Signal::SIGCHLD
            | Signal::SIGCONT
            | Signal::SIGURG
            | Signal::SIGWINCH
            | Signal::SIGSTOP
            | Signal::SIGTSTP
            | Signal::SIGTTIN
            | Signal::SIGTTOU
    );
    if !ends_the_process {
        return Err(format!(
            "{signal} does not end a process; pick one that does, e.g. SEGV, ABRT or KILL"
        ));
    }
    Ok(signal)
}

/// Dies of `signal`, as a crash of that kind would: its default action is restored first
/// (Rust's runtime handles SIGSEGV and SIGBUS to report stack overflows, and SIGTERM and
/// SIGINT are ours), and it is unblocked for this thread.
pub fn die_of(signal: Signal) -> ! {
    if signal != Signal::SIGKILL {
        let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
        // SAFETY: installing the default action involves no handler code at all.
        if let Err(e) = unsafe { signal::sigaction(signal, &default) } {
            tracing::warn!("restoring the default action of {signal}: {e}");
        }
        if let Err(e) = SigSet::from(signal).thread_unblock() {
            tracing::warn!("unblocking {signal}: {e}");
        }
    }
    if let Err(e) = signal::raise(signal) {
        tracing::error!("raising {signal}: {e}");
    }
    // A signal whose default action ends the process, unblocked and sent to this very
    // thread, is delivered before raise returns: reaching this line means it failed.
    tracing::error!("still alive after raising {signal}; exiting with status 70 instead");
    std::process::exit(70)
}

/// The largest `/leak` in one request, in MiB: each call can add as much again.
pub const MAX_LEAK_MIB: usize = 1024;

/// Allocates `mib` MiB, writes to every byte so that it is resident, and keeps it.
/// Returns the MiB kept so far by all calls, or why the memory could not be had.
pub fn leak(app: &App, mib: usize) -> Result<usize, String> {
    let bytes = mib * 1024 * 1024;
    let mut block = Vec::new();
    block
        .try_reserve_exact(bytes)
        .map_err(|e| format!("cannot allocate {mib} MiB: {e}"))?;
    block.resize(bytes, 0xa5);
    let mut leaked = app
        .leaked
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    leaked.push(block);
    Ok(leaked.iter().map(Vec::len).sum::<usize>() / (1024 * 1024))
}
