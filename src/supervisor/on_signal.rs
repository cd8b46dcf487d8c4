//! What a signal received by pidvisor does: SIGCHLD reaps; TERM, INT and QUIT start the
//! shutdown, after the drain of `--shutdown-delay` if there is one (a second one kills
//! everything at once, or ends the drain); the forwarded signals go on to the
//! main command, or to every service but the loggers when there is none.

use std::time::Instant;

use tracing::{debug, error, info, warn};

use super::state::{Main, Stage, Supervisor};
use crate::cli::ForwardTarget;
use crate::init::signals::{self, Received};

/// The most signals handled per wake-up. The rest stay queued in the kernel and the
/// signalfd stays readable, so the loop comes back for them at once, after serving the
/// control socket, output and deadlines: a flood of signals cannot starve those.
const SIGNAL_SLICE: usize = 64;

impl Supervisor {
    /// Handles the pending signals, at most [`SIGNAL_SLICE`] of them.
    pub(super) fn drain_signals(&mut self) {
        for _ in 0..SIGNAL_SLICE {
            match self.signals.next() {
                Ok(Some(received)) => self.on_signal(received),
                Ok(None) => return,
                Err(err) => {
                    error!("reading the signalfd: {err}");
                    return;
                }
            }
        }
    }

    fn on_signal(&mut self, Received { signo, sender }: Received) {
        let now = Instant::now();
        if signo == libc::SIGCHLD {
            self.reap(now);
            return;
        }
        debug!(signal = %signals::name(signo), sender, "received");
        let shutting_down = !matches!(self.stage, Stage::Init { .. } | Stage::Up);
        if signals::is_shutdown_request(signo) && shutting_down {
            info!(
                "{} during shutdown: killing everything now",
                signals::name(signo)
            );
            self.kill_everything();
            return;
        }
        if signals::is_shutdown_request(signo) && self.drain.is_some() {
            info!("{} while draining: shutting down now", signals::name(signo));
            self.end_drain(now);
            return;
        }
        if signals::is_shutdown_request(signo)
            && matches!(self.stage, Stage::Up)
            && self.begin_drain(signo)
        {
            return;
        }
        if signals::is_shutdown_request(signo) {
            info!("{}: shutting down", signals::name(signo));
        }
        self.shut_down_on_signal(signo, now);
    }

    /// What a signal does once any drain is over: forwarded if it is, and the shutdown
    /// begins if it asks for one.
    pub(super) fn shut_down_on_signal(&mut self, signo: libc::c_int, now: Instant) {
        if signals::is_forwarded(signo) {
            self.forward(signo);
        }
        if signals::is_shutdown_request(signo) {
            self.begin_shutdown(now);
        }
    }

    /// Passes a signal on: to the main command if there is one, else to every service but
    /// the loggers (a logger follows its service's life, not the container's signals: a
    /// HUP meant to reload the services would kill one that keeps the default action).
    fn forward(&self, signo: libc::c_int) {
        let targets: Vec<i32> = match self.main {
            Main::Running { pid } => vec![match self.forward_to {
                ForwardTarget::Group => -pid,
                ForwardTarget::Pid => pid,
            }],
            Main::Absent if !signals::is_shutdown_request(signo) => self
                .slots
                .iter()
                .filter(|slot| slot.from_service.is_none())
                .filter_map(|slot| slot.service.pid())
                .map(|pid| -pid)
                .collect(),
            _ => Vec::new(),
        };
        let Some(sent) = self.rewrite.apply(signo) else {
            debug!("{} dropped (--rewrite)", signals::name(signo));
            return;
        };
        for target in targets {
            if let Err(err) = signals::send(target, sent)
                && err.raw_os_error() != Some(libc::ESRCH)
            {
                warn!("forwarding {} to {target}: {err}", signals::name(sent));
            }
        }
    }
}
