//! What the supervisor holds: the [`Supervisor`] itself, a [`Slot`] per service, where the
//! container is in its life ([`Stage`]), the main command's life ([`Main`]), and the
//! tokens that tell the event loop's file descriptors apart.
//!
//! Data only, and the few helpers every other file of the supervisor needs; what the
//! supervisor does is in those files, each an `impl Supervisor` of its own.

use std::cell::OnceCell;
use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::io;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use nix::sys::epoll::Epoll;

use super::checks::RunningCheck;
use super::drain::Drain;
use super::sd_notify::SdNotify;
use super::waits::Waiter;
use crate::cli::ForwardTarget;
use crate::control::server::ControlServer;
use crate::init::cgroup::{Cgroups, ServiceGroup};
use crate::init::oom::OomCounter;
use crate::init::reaper::Exit;
use crate::init::signals::{Rewrites, SignalQueue};
use crate::init::spawn::{self, ChildIo};
use crate::init::sweep::Scope;
use crate::output::events::EventLog;
use crate::output::logs::{LineRelay, LogPipe, Scratch};
use crate::services::liveness::Liveness;
use crate::services::probe::{NotifyPipe, TcpProbe};
use crate::services::service::{Service, State};

/// Token of the signalfd in the epoll set; slot tokens are `(index + 1) << 3 | kind`; the
/// control socket's tokens have the top bit set ([`crate::control::server::TOKEN_BIT`]).
pub(super) const SIGNALS: u64 = 0;
pub(super) const STDOUT: u64 = 0;
pub(super) const STDERR: u64 = 1;
pub(super) const NOTIFY: u64 = 2;
pub(super) const TCP: u64 = 3;
/// A check's socket (a liveness check, or an HTTP readiness check).
pub(super) const CHECK: u64 = 4;
/// The low bits of a slot token that say which of its descriptors it is.
pub(super) const KIND_BITS: u32 = 3;
pub(super) const KIND_MASK: u64 = (1 << KIND_BITS) - 1;

/// Time between two readiness probes (TCP connect or command) of a starting service.
pub(super) const PROBE_INTERVAL: Duration = Duration::from_millis(100);

/// The main command's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Main {
    /// No main command was given.
    Absent,
    /// Given, waiting for the services to be ready.
    Pending,
    Running {
        pid: i32,
    },
    Exited(Exit),
    /// It could not be started; the code is 126 or 127.
    NotStarted {
        exit_code: i32,
    },
}

/// A one-shot script (cont-init.d or cont-finish.d) that is running.
#[derive(Debug, Clone)]
pub(super) struct RunningScript {
    pub(super) pid: i32,
    pub(super) path: PathBuf,
    pub(super) deadline: Option<Instant>,
}

/// Where the container is in its life (see the module docs).
#[derive(Debug)]
pub(super) enum Stage {
    Init {
        queue: VecDeque<PathBuf>,
        running: Option<RunningScript>,
    },
    Up,
    StopMain {
        deadline: Instant,
    },
    StopServices,
    Finish {
        queue: VecDeque<PathBuf>,
        running: Option<RunningScript>,
    },
    Sweep {
        deadline: Instant,
    },
    Killing,
}

/// A service and everything pidvisor holds for it.
pub(super) struct Slot {
    pub(super) service: Service,
    /// Prefixed relays of its stdout and stderr (absent with `log-prefix = false`, when
    /// the streams are inherited as they are).
    pub(super) stdout: Option<LineRelay>,
    pub(super) stderr: Option<LineRelay>,
    /// The pipe to its logger: the service writes its stdout here, the logger reads it as
    /// stdin. Shared by the two slots, held open for pidvisor's whole life.
    pub(super) to_logger: Option<Rc<LogPipe>>,
    pub(super) from_service: Option<Rc<LogPipe>>,
    pub(super) notify: Option<NotifyPipe>,
    pub(super) tcp: Option<TcpProbe>,
    pub(super) probe_pid: Option<i32>,
    /// When to run the next readiness probe.
    pub(super) probe_at: Option<Instant>,
    /// A check under way (see `checks`), when the next liveness check is due, and what
    /// the liveness checks have said.
    pub(super) check: Option<RunningCheck>,
    pub(super) check_at: Option<Instant>,
    pub(super) liveness: Liveness,
    /// The cgroup's OOM-kill count when the current run started, and whether the last
    /// run was OOM-killed (see `oom`).
    pub(super) oom_baseline: Option<u64>,
    pub(super) last_exit_oom: bool,
    /// The state last reported as events (see `observe`).
    pub(super) observed: Observed,
    /// Runs started so far (a restart request waits for a newer one).
    pub(super) runs: u64,
    /// `pidvisorctl restart`: start it again once it is down.
    pub(super) restart_pending: bool,
    /// Its cgroup, where pidvisor could make one: it holds whatever its `run` started.
    pub(super) cgroup: Option<ServiceGroup>,
    /// Its cgroup has been emptied with `cgroup.kill` (see [`spawn::Setup`]).
    pub(super) cgroup_killed: bool,
}

impl Slot {
    /// The stdout and stderr of the service's programs (`run`, `finish`): the logger's
    /// pipe or a prefixed relay, or pidvisor's own (`None`) with `log-prefix = false`.
    pub(super) fn output_for_child(
        &mut self,
    ) -> Result<(Option<ChildIo>, Option<ChildIo>), spawn::SpawnError> {
        let stdout = match (&self.to_logger, &mut self.stdout) {
            (Some(pipe), _) => Some(ChildIo::Fd(
                pipe.writer_for_child()
                    .map_err(|e| setup_error("the log pipe", e))?,
            )),
            (None, Some(relay)) => Some(ChildIo::Fd(
                relay
                    .writer_for_child()
                    .map_err(|e| setup_error("stdout", e))?,
            )),
            (None, None) => None,
        };
        let stderr = match &mut self.stderr {
            Some(relay) => Some(ChildIo::Fd(
                relay
                    .writer_for_child()
                    .map_err(|e| setup_error("stderr", e))?,
            )),
            None => None,
        };
        Ok((stdout, stderr))
    }
}

/// Everything the event loop holds; its methods are spread over this folder's files.
pub struct Supervisor {
    pub(super) signals: SignalQueue,
    pub(super) epoll: Epoll,
    pub(super) scope: Scope,
    pub(super) grace: Duration,
    /// `--shutdown-delay`, and the drain it started, if one is under way.
    pub(super) shutdown_delay: Duration,
    pub(super) drain: Option<Drain>,
    pub(super) forward_to: ForwardTarget,
    pub(super) rewrite: Rewrites,
    pub(super) finish_dir: PathBuf,
    pub(super) finish_timeout: Duration,
    pub(super) init_continue_on_error: bool,
    pub(super) main: Main,
    /// The cgroup's OOM-kill count when the main command started.
    pub(super) main_oom_baseline: Option<u64>,
    /// The cgroup's OOM-kill count, read at every start and SIGKILL exit.
    pub(super) oom: OomCounter,
    /// Why the main command, started during set-up when there was nothing to wait for,
    /// could not run: reported when the loop would have started it (see `start_main`).
    pub(super) early_main_failure: Option<spawn::SpawnError>,
    pub(super) command: Vec<OsString>,
    pub(super) slots: Vec<Slot>,
    /// The folder of the services' cgroups (removed, with them, when dropped).
    pub(super) cgroups: Option<Cgroups>,
    pub(super) by_name: HashMap<String, usize>,
    pub(super) stage: Stage,
    /// The exit code decided by the first cause of shutdown that sets one (a failed init
    /// script, a critical service); otherwise the main command's.
    pub(super) exit_code: Option<i32>,
    pub(super) scratch: Scratch,
    pub(super) orphans_reaped: u64,
    /// Reused by each round of reaping: the exits, and the pids pidvisor started.
    pub(super) reaped: Vec<(i32, crate::init::reaper::Exit)>,
    pub(super) owned_pids: Vec<i32>,
    pub(super) events: EventLog,
    /// The control socket; `None` if it could not be created.
    pub(super) control: Option<ControlServer>,
    /// Control requests waiting for a service to reach a state.
    pub(super) waiters: Vec<Waiter>,
    /// `PIDVISOR_TIME_SCALE`, to report nominal delays.
    pub(super) time_scale: f64,
    /// Which slot's backlog a writable outlet serves first (they take turns).
    pub(super) output_turn: usize,
    /// The longest the main command waits for the boot to settle, and when that is over
    /// (set once the init scripts are done).
    pub(super) main_wait: Option<Duration>,
    pub(super) main_due: Option<Instant>,
    /// `NOTIFY_SOCKET`: what the host has been told.
    pub(super) sd_notify: Option<SdNotify>,
    /// pidvisor's environment, which every service program gets with its own variables
    /// added: read by the first such start, after set-up (which may remove
    /// `NOTIFY_SOCKET`); never read when no service runs.
    pub(super) environment: OnceCell<spawn::Inherited>,
    /// How far start-up is from over, and whether its pages of the binary have been given
    /// back (see [`crate::init::resident`]).
    pub(super) startup: Startup,
}

/// Start-up's end, as the event loop sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Startup {
    /// The loop has not yet waited SETTLED_MS with nothing happening.
    Busy,
    /// It has: start-up is over, and its pages go back the next time pidvisor sleeps.
    Settled,
    /// The pages have been given back (once).
    PagesReleased,
}

/// What was last reported about a service.
#[derive(Debug, Clone, Copy)]
pub(super) struct Observed {
    pub(super) state: State,
    pub(super) restarts: u32,
    /// A `stopped` event was sent for the current down time (a stop that runs a finish
    /// script passes through `down` twice; it is reported once).
    pub(super) stop_reported: bool,
}

impl Default for Observed {
    fn default() -> Self {
        Observed {
            state: State::Down,
            restarts: 0,
            stop_reported: false,
        }
    }
}

pub(super) fn token(index: usize, kind: u64) -> u64 {
    ((index as u64 + 1) << KIND_BITS) | kind
}

/// A descriptor for a child could not be made: reported like a program that cannot run.
pub(super) fn setup_error(what: &str, err: io::Error) -> spawn::SpawnError {
    spawn::SpawnError {
        exit_code: 126,
        message: format!("cannot set up {what}: {err}"),
    }
}
