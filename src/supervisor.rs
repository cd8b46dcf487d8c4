//! The one event loop: signals, child exits and deadlines, in a single thread.
//!
//! pidvisor sleeps in one `epoll_wait`, with no timeout unless a deadline is pending, so an
//! idle container costs zero wake-ups. Every event source is a file descriptor registered
//! here (today the signalfd; service pipes and the control socket join the same loop), and
//! every timed step is a deadline, never a sleep.
//!
//! Error policy: before the loop, a failure to set up (signalfd, epoll, subreaper) is fatal
//! and reported at once, because nothing useful can run without it. Inside the loop
//! pidvisor must not die, since as PID 1 its exit kills the whole container: every error
//! is logged and the loop goes on.
//!
//! Shutdown runs in phases. A TERM/INT/QUIT is forwarded to the main command first, so it
//! can stop its own children in order. When the main command has exited (or at once,
//! without one), every remaining process gets SIGTERM and SIGCONT, and the grace deadline
//! runs from the moment shutdown began. At the deadline, or on a second TERM/INT/QUIT,
//! everything left gets SIGKILL. pidvisor exits as soon as it has no child left.

use std::ffi::OsString;
use std::io;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use tracing::{debug, error, info, warn};

use crate::cli::{ForwardTarget, Options};
use crate::reaper::{self, Exit, Remaining};
use crate::signals::{self, Received, SignalQueue};
use crate::spawn;
use crate::sweep::{self, Scope};

/// Token of the signalfd in the epoll set.
const SIGNALS: u64 = 0;

/// The main command's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Main {
    /// No main command was given.
    Absent,
    Running {
        pid: i32,
    },
    Exited(Exit),
    /// It could not be started; the code is 126 or 127.
    NotStarted {
        exit_code: i32,
    },
}

/// Where the container is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    /// SIGTERM has gone (or goes, once the main command is gone) to everything; SIGKILL
    /// follows at `deadline`.
    Terminating {
        deadline: Instant,
        swept: bool,
    },
    /// SIGKILL has gone to everything; waiting for the last children to be reaped.
    Killing,
}

pub struct Supervisor {
    signals: SignalQueue,
    epoll: Epoll,
    scope: Scope,
    grace: Duration,
    forward_to: ForwardTarget,
    main: Main,
    phase: Phase,
    orphans_reaped: u64,
}

impl Supervisor {
    /// Sets up everything the loop needs. Errors here are fatal (see the module docs).
    pub fn new(signals: SignalQueue, options: &Options) -> io::Result<Supervisor> {
        let scope = become_reaper()?;
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
            .map_err(|e| io::Error::other(format!("epoll_create1: {e}")))?;
        epoll
            .add(
                signals.as_fd(),
                EpollEvent::new(EpollFlags::EPOLLIN, SIGNALS),
            )
            .map_err(|e| io::Error::other(format!("epoll_ctl(signalfd): {e}")))?;
        if signals.started_with_blocked_signals() {
            info!("pidvisor was started with blocked signals; children start with none blocked");
        }
        Ok(Supervisor {
            signals,
            epoll,
            scope,
            grace: options.grace,
            forward_to: options.forward_to,
            main: Main::Absent,
            phase: Phase::Running,
            orphans_reaped: 0,
        })
    }

    /// Starts the main command, if any, runs the loop, and returns the exit code.
    pub fn run(mut self, command: &[OsString]) -> i32 {
        if !command.is_empty() {
            match spawn::spawn(command, self.signals.child_reset()) {
                Ok(pid) => {
                    debug!(pid, "started main command");
                    self.main = Main::Running { pid };
                }
                Err(err) => {
                    error!("{}", err.message);
                    self.main = Main::NotStarted {
                        exit_code: err.exit_code,
                    };
                    self.begin_shutdown();
                }
            }
        }
        let mut events = [EpollEvent::empty(); 8];
        loop {
            if self.phase != Phase::Running && self.reap() == Remaining::None {
                return self.exit_code();
            }
            let timeout = self.timeout();
            match self.epoll.wait(&mut events, timeout) {
                Ok(ready) => {
                    if events[..ready].iter().any(|e| e.data() == SIGNALS) {
                        self.drain_signals();
                    }
                }
                Err(Errno::EINTR) => {}
                Err(err) => error!("epoll_wait: {err}"),
            }
            self.check_deadline();
        }
    }

    fn exit_code(&self) -> i32 {
        match self.main {
            Main::Absent | Main::Running { .. } => 0,
            Main::Exited(exit) => exit.exit_code(),
            Main::NotStarted { exit_code } => exit_code,
        }
    }

    /// Milliseconds until the pending deadline, rounded up so that we never wake early and
    /// spin; no timeout at all when nothing is pending.
    fn timeout(&self) -> EpollTimeout {
        match self.phase {
            Phase::Terminating { deadline, .. } => {
                let left = deadline.saturating_duration_since(Instant::now());
                let millis = left.as_micros().div_ceil(1000);
                EpollTimeout::try_from(millis).unwrap_or(EpollTimeout::MAX)
            }
            Phase::Running | Phase::Killing => EpollTimeout::NONE,
        }
    }

    fn drain_signals(&mut self) {
        loop {
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
        if signo == libc::SIGCHLD {
            self.reap();
            return;
        }
        debug!(signal = %signals::name(signo), sender, "received");
        if signals::is_shutdown_request(signo) && self.phase != Phase::Running {
            info!(
                "{} during shutdown: killing everything now",
                signals::name(signo)
            );
            self.kill_everything();
            return;
        }
        if signals::is_forwarded(signo) {
            self.forward(signo);
        }
        if signals::is_shutdown_request(signo) {
            info!("{}: shutting down", signals::name(signo));
            self.begin_shutdown();
        }
    }

    fn forward(&self, signo: libc::c_int) {
        let Main::Running { pid } = self.main else {
            debug!(
                "no main command running; {} not forwarded",
                signals::name(signo)
            );
            return;
        };
        let target = match self.forward_to {
            ForwardTarget::Group => -pid,
            ForwardTarget::Pid => pid,
        };
        if let Err(err) = signals::send(target, signo) {
            if err.raw_os_error() == Some(libc::ESRCH) {
                debug!(
                    "{} not forwarded: main command already gone",
                    signals::name(signo)
                );
            } else {
                warn!("forwarding {} to {target}: {err}", signals::name(signo));
            }
        }
    }

    /// Reaps everything that has exited and reacts to the main command's exit.
    fn reap(&mut self) -> Remaining {
        let mut main_exit = None;
        let main_pid = match self.main {
            Main::Running { pid } => Some(pid),
            _ => None,
        };
        let mut orphans = 0u64;
        let remaining = reaper::reap_all(|pid, exit| {
            if Some(pid) == main_pid {
                main_exit = Some(exit);
            } else {
                orphans += 1;
                debug!(pid, ?exit, "reaped");
            }
        });
        self.orphans_reaped += orphans;
        if let Some(exit) = main_exit {
            self.on_main_exit(exit);
        }
        match remaining {
            Ok(remaining) => remaining,
            Err(err) => {
                error!("waitpid: {err}");
                Remaining::Some
            }
        }
    }

    fn on_main_exit(&mut self, exit: Exit) {
        self.main = Main::Exited(exit);
        match exit {
            Exit::Code(code) => info!("main command exited with code {code}"),
            Exit::Signal(signo) => info!(
                "main command was killed by {} (exit code {})",
                signals::name(signo),
                exit.exit_code()
            ),
        }
        self.begin_shutdown();
    }

    /// Enters (or advances) the polite part of shutdown. The sweep waits until the main
    /// command is gone, so that it can stop its own children first.
    fn begin_shutdown(&mut self) {
        if self.phase == Phase::Running {
            self.phase = Phase::Terminating {
                deadline: Instant::now() + self.grace,
                swept: false,
            };
        }
        if let Phase::Terminating {
            deadline,
            swept: false,
        } = self.phase
            && !matches!(self.main, Main::Running { .. })
        {
            debug!(
                orphans_reaped = self.orphans_reaped,
                "sending SIGTERM to all processes"
            );
            sweep::signal_all(self.scope, libc::SIGTERM);
            sweep::signal_all(self.scope, libc::SIGCONT);
            self.phase = Phase::Terminating {
                deadline,
                swept: true,
            };
        }
    }

    fn check_deadline(&mut self) {
        if let Phase::Terminating { deadline, .. } = self.phase
            && Instant::now() >= deadline
        {
            warn!(
                "grace time of {:?} is over: sending SIGKILL to all remaining processes",
                self.grace
            );
            self.kill_everything();
        }
    }

    fn kill_everything(&mut self) {
        sweep::signal_all(self.scope, libc::SIGKILL);
        self.phase = Phase::Killing;
    }
}

/// PID 1 reaps by nature; anywhere else, registering as child subreaper makes orphans of
/// our descendants come to us instead of to the host's init.
fn become_reaper() -> io::Result<Scope> {
    let pid = std::process::id() as i32;
    if pid == 1 {
        return Ok(Scope::Namespace);
    }
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes a plain integer argument.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        let err = io::Error::last_os_error();
        return Err(io::Error::other(format!(
            "prctl(PR_SET_CHILD_SUBREAPER): {err}"
        )));
    }
    info!(
        "not running as PID 1 (pid {pid}): registered as child subreaper; orphans of the main \
         command are reaped here, and shutdown signals only pidvisor's descendants"
    );
    Ok(Scope::DescendantsOf(pid))
}
