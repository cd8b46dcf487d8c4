//! The one event loop: signals, child exits, service output, readiness and deadlines, in a
//! single thread, for the main command and every service alike.
//!
//! pidvisor sleeps in one `epoll_wait`, with no timeout unless a deadline is pending, so an
//! idle container costs zero wake-ups. Every event source is a file descriptor registered
//! here (the signalfd, each service's output pipes, readiness pipes and probe sockets, the
//! control socket and its clients), and every timed step is a deadline, never a sleep.
//! Services decide in [`crate::services::service`]; this file carries out their actions and routes
//! events to them. Control requests are carried out in `requests`, and state changes
//! become life-cycle events in `observe`.
//!
//! Error policy: before the loop, a failure to set up (signalfd, epoll, subreaper) is fatal
//! and reported at once, because nothing useful can run without it. Inside the loop
//! pidvisor must not die, since as PID 1 its exit kills the whole container: every error
//! is logged, the service concerned gets its restart policy, and the loop goes on.
//!
//! The container's life is a sequence of stages:
//! 1. `Init`: the `cont-init.d` scripts, one at a time, in name order. A failure stops
//!    the container (unless told to continue).
//! 2. `Up`: services start as soon as the services they come `after` are ready; the main
//!    command starts once every service wanted at boot is ready (or has stopped for good).
//! 3. Shutdown, on TERM/INT/QUIT, the main command's exit or a critical service's end:
//!    `StopMain` (the signal was forwarded; SIGKILL to its group after the grace time),
//!    `StopServices` (each service once all services that come after it are down, each
//!    bounded by its stop-timeout), `Finish` (the `cont-finish.d` scripts, each bounded),
//!    `Sweep` (SIGTERM and SIGCONT to every remaining process; SIGKILL after the grace
//!    time), and pidvisor exits as soon as it has no child left. A second TERM/INT/QUIT
//!    skips to SIGKILL for everything.

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::process::Stdio;
use std::rc::Rc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use tracing::{debug, error, info, warn};

use crate::cli::{ForwardTarget, Options};
use crate::control::server::{self, ControlServer};
use crate::duration::deadline_after;
use crate::init::limits;
use crate::init::reaper::{self, Exit, Remaining};
use crate::init::signals::{self, Received, Rewrites, SignalQueue};
use crate::init::spawn::{self, Setup};
use crate::init::sweep::{self, Scope};
use crate::output::events::{self, Clock, Event, EventLog};
use crate::output::logs::{LineRelay, LogPipe, Scratch, Sink};
use crate::services::probe::{Notification, NotifyPipe, TcpProbe};
use crate::services::scan;
use crate::services::scripts;
use crate::services::service::{Action, Service, State};
use crate::services::spec::{Readiness, RestartPolicy, ServiceSpec};

mod observe;
mod output;
mod requests;

/// Token of the signalfd in the epoll set; slot tokens are `(index + 1) << 2 | kind`; the
/// control socket's tokens have the top bit set ([`server::TOKEN_BIT`]).
const SIGNALS: u64 = 0;
const STDOUT: u64 = 0;
const STDERR: u64 = 1;
const NOTIFY: u64 = 2;
const TCP: u64 = 3;

/// Time between two readiness probes (TCP connect or command) of a starting service.
const PROBE_INTERVAL: Duration = Duration::from_millis(100);

/// The main command's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Main {
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
struct RunningScript {
    pid: i32,
    path: PathBuf,
    deadline: Option<Instant>,
}

/// Where the container is in its life (see the module docs).
#[derive(Debug)]
enum Stage {
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
struct Slot {
    service: Service,
    /// Prefixed relays of its stdout and stderr (absent with `log-prefix = false`, when
    /// the streams are inherited as they are).
    stdout: Option<LineRelay>,
    stderr: Option<LineRelay>,
    /// The pipe to its logger: the service writes its stdout here, the logger reads it as
    /// stdin. Shared by the two slots, held open for pidvisor's whole life.
    to_logger: Option<Rc<LogPipe>>,
    from_service: Option<Rc<LogPipe>>,
    notify: Option<NotifyPipe>,
    tcp: Option<TcpProbe>,
    probe_pid: Option<i32>,
    /// When to run the next readiness probe.
    probe_at: Option<Instant>,
    /// The state last reported as events (see `observe`).
    observed: observe::Observed,
    /// Runs started so far (a restart request waits for a newer one).
    runs: u64,
    /// `pidvisorctl restart`: start it again once it is down.
    restart_pending: bool,
}

impl Slot {
    /// The stdout and stderr of the service's programs (`run`, `finish`): the logger's
    /// pipe or a prefixed relay, or pidvisor's own (`None`) with `log-prefix = false`.
    fn output_for_child(&self) -> Result<(Option<Stdio>, Option<Stdio>), spawn::SpawnError> {
        let stdout = match (&self.to_logger, &self.stdout) {
            (Some(pipe), _) => Some(
                pipe.writer_for_child()
                    .map_err(|e| setup_error("the log pipe", e))?,
            ),
            (None, Some(relay)) => Some(
                relay
                    .writer_for_child()
                    .map_err(|e| setup_error("stdout", e))?,
            ),
            (None, None) => None,
        };
        let stderr = match &self.stderr {
            Some(relay) => Some(
                relay
                    .writer_for_child()
                    .map_err(|e| setup_error("stderr", e))?,
            ),
            None => None,
        };
        Ok((stdout, stderr))
    }
}

pub struct Supervisor {
    signals: SignalQueue,
    epoll: Epoll,
    scope: Scope,
    grace: Duration,
    forward_to: ForwardTarget,
    rewrite: Rewrites,
    finish_dir: PathBuf,
    finish_timeout: Duration,
    init_continue_on_error: bool,
    main: Main,
    command: Vec<OsString>,
    slots: Vec<Slot>,
    by_name: HashMap<String, usize>,
    stage: Stage,
    /// The exit code decided by the first cause of shutdown that sets one (a failed init
    /// script, a critical service); otherwise the main command's.
    exit_code: Option<i32>,
    scratch: Scratch,
    orphans_reaped: u64,
    events: EventLog,
    /// The control socket; `None` if it could not be created.
    control: Option<ControlServer>,
    /// Control requests waiting for a service to reach a state.
    waiters: Vec<requests::Waiter>,
    /// `PIDVISOR_TIME_SCALE`, to report nominal delays.
    time_scale: f64,
    /// Which slot's backlog a writable outlet serves first (they take turns).
    output_turn: usize,
}

impl Supervisor {
    /// Sets up everything the loop needs. Errors here are fatal (see the module docs);
    /// a broken service is not an error here: it is reported and left out.
    pub fn new(signals: SignalQueue, options: &Options) -> io::Result<Supervisor> {
        let scope = become_reaper()?;
        match limits::raise_open_files_limit() {
            Ok(Some((old, new))) => {
                debug!("open files limit raised from {old} to {new}; children get {old}")
            }
            Ok(None) => {}
            Err(err) => warn!("cannot raise the open files limit (setrlimit): {err}"),
        }
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
            .map_err(|e| io::Error::other(format!("epoll_create1: {e}")))?;
        epoll
            .add(
                signals.as_fd(),
                EpollEvent::new(EpollFlags::EPOLLIN, SIGNALS),
            )
            .map_err(|e| io::Error::other(format!("epoll_ctl(signalfd): {e}")))?;
        for sink in crate::output::outlet::outlets() {
            let fallback = crate::output::outlet::lock(sink)
                .fallback()
                .map(str::to_owned);
            if let Some(why) = fallback {
                warn!(
                    "{sink}: writing blocking ({why}): a reader that stops reading will \
                     stall pidvisor"
                );
            }
        }
        if signals.started_with_blocked_signals() {
            info!("pidvisor was started with blocked signals; children start with none blocked");
        }
        let init = scripts::list(&options.init_dir).map_err(|e| {
            io::Error::other(format!("cannot read {}: {e}", options.init_dir.display()))
        })?;
        for path in &init.skipped {
            warn!("{} is not executable: skipped", path.display());
        }
        let events = EventLog::new(Clock::new(), options.events_file.as_deref());
        // PID 1 never dies of its own accord: without a socket, it runs uncontrolled.
        let control = match ControlServer::bind(&options.socket, &epoll) {
            Ok(server) => Some(server),
            Err(err) => {
                warn!("no control socket, pidvisorctl will not work: {err}");
                None
            }
        };
        let mut supervisor = Supervisor {
            signals,
            epoll,
            scope,
            grace: options.grace,
            forward_to: options.forward_to,
            rewrite: options.rewrite.clone(),
            finish_dir: options.finish_dir.clone(),
            finish_timeout: options.finish_timeout,
            init_continue_on_error: options.init_continue_on_error,
            main: if options.command.is_empty() {
                Main::Absent
            } else {
                Main::Pending
            },
            command: options.command.clone(),
            slots: Vec::new(),
            by_name: HashMap::new(),
            stage: Stage::Init {
                queue: init.runnable.into(),
                running: None,
            },
            exit_code: None,
            scratch: Scratch::default(),
            orphans_reaped: 0,
            events,
            control,
            waiters: Vec::new(),
            time_scale: options.time_scale.get(),
            output_turn: 0,
        };
        supervisor.load_services(&options.services_dir)?;
        Ok(supervisor)
    }

    /// Reads the services folder; every problem is logged and the service left out.
    fn load_services(&mut self, dir: &std::path::Path) -> io::Result<()> {
        let scanned = scan::scan(dir);
        for problem in &scanned.problems {
            error!("{problem}");
            self.emit(Event::ConfigProblem {
                message: problem.to_string(),
            });
        }
        for spec in scanned.services {
            let logger = spec.logger.clone();
            let mut spec = spec.with_time_scale(self.time_scale);
            if logger.is_some() {
                spec.after.push(logger_name(&spec.name));
            }
            let mut slot = self.new_slot(spec.clone())?;
            if let Some(run) = logger {
                let pipe = Rc::new(LogPipe::new()?);
                slot.to_logger = Some(Rc::clone(&pipe));
                let mut logger_slot = self.new_slot(logger_spec(&spec, run))?;
                logger_slot.from_service = Some(pipe);
                self.push_slot(logger_slot)?;
            }
            self.push_slot(slot)?;
        }
        if !self.slots.is_empty() {
            let names: Vec<&str> = self.slots.iter().map(|s| s.service.name()).collect();
            info!("{} services: {}", names.len(), names.join(", "));
        }
        Ok(())
    }

    fn new_slot(&self, spec: ServiceSpec) -> io::Result<Slot> {
        let (stdout, stderr) = if spec.log_prefix {
            let stdout = match spec.logger {
                Some(_) => None,
                None => Some(LineRelay::new(&spec.name, Sink::Stdout)?),
            };
            (stdout, Some(LineRelay::new(&spec.name, Sink::Stderr)?))
        } else {
            (None, None)
        };
        Ok(Slot {
            service: Service::new(spec),
            stdout,
            stderr,
            to_logger: None,
            from_service: None,
            notify: None,
            tcp: None,
            probe_pid: None,
            probe_at: None,
            observed: observe::Observed::default(),
            runs: 0,
            restart_pending: false,
        })
    }

    fn push_slot(&mut self, slot: Slot) -> io::Result<()> {
        let index = self.slots.len();
        for (relay, kind) in [(&slot.stdout, STDOUT), (&slot.stderr, STDERR)] {
            if let Some(relay) = relay {
                self.epoll
                    .add(
                        relay.as_fd(),
                        EpollEvent::new(EpollFlags::EPOLLIN, token(index, kind)),
                    )
                    .map_err(|e| io::Error::other(format!("epoll_ctl(service pipe): {e}")))?;
            }
        }
        self.by_name.insert(slot.service.name().to_owned(), index);
        self.slots.push(slot);
        Ok(())
    }

    /// Runs the container's life and returns its exit code.
    pub fn run(mut self) -> i32 {
        let mut events = [EpollEvent::empty(); 32];
        loop {
            let now = Instant::now();
            self.restart_pending_services(now);
            self.advance(now);
            self.check_waiters(now);
            if matches!(self.stage, Stage::Sweep { .. } | Stage::Killing)
                && self.reap(now) == Remaining::None
            {
                self.flush_before_exit(deadline_after(now, self.grace));
                let code = self.final_exit_code();
                self.emit(Event::Exit { code });
                return code;
            }
            self.sync_output();
            let timeout = self.timeout(now);
            match self.epoll.wait(&mut events, timeout) {
                Ok(ready) => {
                    for event in &events[..ready] {
                        if server::owns_token(event.data()) {
                            self.on_control_ready(event.data(), event.events());
                        } else if output::owns_token(event.data()) {
                            self.on_outlet_writable(event.data());
                        } else {
                            self.on_ready_fd(event.data());
                        }
                    }
                }
                Err(Errno::EINTR) => {}
                Err(err) => error!("epoll_wait: {err}"),
            }
            self.on_deadlines(Instant::now());
        }
    }

    fn final_exit_code(&self) -> i32 {
        if let Some(code) = self.exit_code {
            return code;
        }
        match self.main {
            Main::Absent | Main::Pending | Main::Running { .. } => 0,
            Main::Exited(exit) => exit.exit_code(),
            Main::NotStarted { exit_code } => exit_code,
        }
    }

    // ---- waiting -------------------------------------------------------------------

    /// The earliest pending deadline, as an epoll timeout rounded up to whole
    /// milliseconds (so that we never wake early and spin); none if nothing is pending.
    fn timeout(&self, now: Instant) -> EpollTimeout {
        let stage = match &self.stage {
            Stage::StopMain { deadline } | Stage::Sweep { deadline } => Some(*deadline),
            Stage::Init { running, .. } | Stage::Finish { running, .. } => {
                running.as_ref().and_then(|r| r.deadline)
            }
            _ => None,
        };
        let services = self
            .slots
            .iter()
            .flat_map(|slot| [slot.service.deadline(), slot.probe_at]);
        let control = self.control_deadline();
        let Some(deadline) = std::iter::once(stage)
            .chain(services)
            .chain(std::iter::once(control))
            .flatten()
            .min()
        else {
            return EpollTimeout::NONE;
        };
        let left = deadline.saturating_duration_since(now);
        let millis = left.as_micros().div_ceil(1000);
        EpollTimeout::try_from(millis).unwrap_or(EpollTimeout::MAX)
    }

    fn on_deadlines(&mut self, now: Instant) {
        for index in 0..self.slots.len() {
            if self.slots[index]
                .service
                .deadline()
                .is_some_and(|d| d <= now)
            {
                let actions = self.slots[index].service.on_deadline(now);
                self.apply(index, actions, now);
            }
            if self.slots[index].probe_at.is_some_and(|at| at <= now) {
                self.slots[index].probe_at = None;
                self.probe(index, now);
            }
        }
        match &mut self.stage {
            Stage::StopMain { deadline } if *deadline <= now => {
                if let Main::Running { pid } = self.main {
                    warn!("main command still running after {:?}: SIGKILL", self.grace);
                    let _ = signals::send(-pid, libc::SIGKILL);
                    let _ = signals::send(pid, libc::SIGKILL);
                }
                self.stage = Stage::StopServices;
            }
            Stage::Init { running, .. } | Stage::Finish { running, .. } => {
                if let Some(script) = running
                    && script.deadline.is_some_and(|d| d <= now)
                {
                    warn!(
                        "{} still running after {:?}: SIGKILL",
                        script.path.display(),
                        self.finish_timeout
                    );
                    let _ = signals::send(-script.pid, libc::SIGKILL);
                    script.deadline = None;
                }
            }
            Stage::Sweep { deadline } if *deadline <= now => {
                warn!(
                    "grace time of {:?} is over: sending SIGKILL to all remaining processes",
                    self.grace
                );
                self.kill_everything();
            }
            _ => {}
        }
        self.on_control_deadlines(now);
    }

    // ---- events --------------------------------------------------------------------

    fn on_ready_fd(&mut self, token: u64) {
        if token == SIGNALS {
            self.drain_signals();
            return;
        }
        let index = (token >> 2) as usize - 1;
        let now = Instant::now();
        let Some(slot) = self.slots.get_mut(index) else {
            return;
        };
        match token & 3 {
            STDOUT | STDERR => {
                let relay = if token & 3 == STDOUT {
                    &mut slot.stdout
                } else {
                    &mut slot.stderr
                };
                if let Some(relay) = relay
                    && let Err(err) = relay.relay(&mut self.scratch)
                {
                    warn!("{}: relaying output: {err}", slot.service.name());
                }
            }
            NOTIFY => {
                let outcome = slot.notify.as_ref().map(NotifyPipe::on_readable);
                match outcome {
                    Some(Ok(Notification::Ready)) => {
                        slot.notify = None;
                        slot.service.on_ready();
                    }
                    Some(Ok(Notification::NotYet)) => {}
                    Some(Ok(Notification::Closed)) | Some(Err(_)) | None => {
                        // Closed without a newline: readiness now depends on the timeout.
                        slot.notify = None;
                    }
                }
            }
            TCP => {
                let succeeded = slot.tcp.take().is_some_and(|probe| probe.succeeded());
                if succeeded {
                    slot.service.on_ready();
                } else if matches!(slot.service.state, State::Starting { .. }) {
                    slot.probe_at = Some(now + PROBE_INTERVAL);
                }
            }
            _ => {}
        }
        self.observe(index, now);
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
        if signals::is_forwarded(signo) {
            self.forward(signo);
        }
        if signals::is_shutdown_request(signo) {
            info!("{}: shutting down", signals::name(signo));
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

    /// Reaps everything that has exited and routes each exit to its owner.
    fn reap(&mut self, now: Instant) -> Remaining {
        let mut known = Vec::new();
        let mut orphans = 0u64;
        let remaining = reaper::reap_all(|pid, exit| {
            if self.owns(pid) {
                known.push((pid, exit));
            } else {
                orphans += 1;
                debug!(pid, ?exit, "reaped orphan");
            }
        });
        self.orphans_reaped += orphans;
        if orphans > 0 {
            self.emit(Event::OrphansReaped {
                count: orphans,
                total: self.orphans_reaped,
            });
        }
        for (pid, exit) in known {
            self.on_child_exit(pid, exit, now);
        }
        self.check_lingering_groups(now);
        match remaining {
            Ok(remaining) => remaining,
            Err(err) => {
                error!("waitpid: {err}");
                Remaining::Some
            }
        }
    }

    fn owns(&self, pid: i32) -> bool {
        self.main == Main::Running { pid }
            || self.script_pid() == Some(pid)
            || self.slots.iter().any(|slot| {
                slot.service.pid() == Some(pid)
                    || slot.service.finish_pid() == Some(pid)
                    || slot.probe_pid == Some(pid)
            })
    }

    fn script_pid(&self) -> Option<i32> {
        match &self.stage {
            Stage::Init { running, .. } | Stage::Finish { running, .. } => {
                running.as_ref().map(|r| r.pid)
            }
            _ => None,
        }
    }

    fn on_child_exit(&mut self, pid: i32, exit: Exit, now: Instant) {
        if self.main == (Main::Running { pid }) {
            self.on_main_exit(exit, now);
            return;
        }
        if self.script_pid() == Some(pid) {
            self.on_script_exit(exit, now);
            return;
        }
        let Some(index) = self.slots.iter().position(|slot| {
            slot.service.pid() == Some(pid)
                || slot.service.finish_pid() == Some(pid)
                || slot.probe_pid == Some(pid)
        }) else {
            return;
        };
        let slot = &mut self.slots[index];
        if slot.probe_pid == Some(pid) {
            slot.probe_pid = None;
            if exit == Exit::Code(0) {
                slot.service.on_ready();
            } else if matches!(slot.service.state, State::Starting { .. }) {
                slot.probe_at = Some(now + PROBE_INTERVAL);
            }
            self.observe(index, now);
            return;
        }
        if slot.service.pid() == Some(pid) {
            let ran = slot
                .service
                .started_at()
                .map(|at| now.saturating_duration_since(at));
            let (code, signal) = match exit {
                Exit::Code(code) => (Some(code), None),
                Exit::Signal(signo) => (None, Some(signals::name(signo))),
            };
            let event = Event::Exited {
                service: slot.service.name().to_owned(),
                pid,
                code,
                signal,
                ran: events::seconds(ran.unwrap_or_default()),
            };
            self.emit(event);
        }
        let slot = &mut self.slots[index];
        let actions = if slot.service.finish_pid() == Some(pid) {
            self.drain_output(index);
            let slot = &mut self.slots[index];
            let code = match exit {
                Exit::Code(code) => Some(code),
                Exit::Signal(_) => None,
            };
            slot.service.on_finish_exit(code, now)
        } else {
            let stopping = matches!(slot.service.state, State::Stopping { .. });
            log_exit(slot.service.name(), exit, stopping);
            self.drain_output(index);
            let slot = &mut self.slots[index];
            slot.notify = None;
            slot.tcp = None;
            slot.probe_at = None;
            if let Some(probe) = slot.probe_pid.take() {
                // A readiness command that outlived its service: its answer is moot.
                let _ = signals::send(-probe, libc::SIGKILL);
            }
            let group_empty = group_is_empty(pid);
            slot.service.on_exit(exit, group_empty, now)
        };
        self.apply(index, actions, now);
    }

    /// Relays all the output a service has left in its pipes, unfinished line included.
    fn drain_output(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        for relay in [&mut slot.stdout, &mut slot.stderr].into_iter().flatten() {
            if let Err(err) = relay.drain(&mut self.scratch) {
                warn!("{}: relaying output: {err}", slot.service.name());
            }
        }
    }

    /// A stopping service whose `run` has exited is down once its whole group is gone.
    fn check_lingering_groups(&mut self, now: Instant) {
        for index in 0..self.slots.len() {
            let service = &self.slots[index].service;
            if let State::Stopping { pid: None, .. } = service.state
                && group_is_empty(service.pgid())
            {
                let actions = self.slots[index].service.on_group_empty(now);
                self.apply(index, actions, now);
            }
        }
    }

    fn on_main_exit(&mut self, exit: Exit, now: Instant) {
        self.main = Main::Exited(exit);
        match exit {
            Exit::Code(code) => info!("main command exited with code {code}"),
            Exit::Signal(signo) => info!(
                "main command was killed by {} (exit code {})",
                signals::name(signo),
                exit.exit_code()
            ),
        }
        self.begin_shutdown(now);
    }

    fn on_script_exit(&mut self, exit: Exit, now: Instant) {
        let (Stage::Init { running, .. } | Stage::Finish { running, .. }) = &mut self.stage else {
            return;
        };
        let Some(script) = running.take() else {
            return;
        };
        let in_init = matches!(self.stage, Stage::Init { .. });
        if exit == Exit::Code(0) {
            debug!("{} done", script.path.display());
            return;
        }
        let what = format!("failed ({})", describe_exit(exit));
        if !in_init {
            warn!("{} {what}", script.path.display());
            return;
        }
        if self.init_continue_on_error {
            warn!(
                "{} {what}; going on (init-continue-on-error)",
                script.path.display()
            );
            return;
        }
        error!(
            "{} {what}: stopping the container (fix the script, or set \
             PIDVISOR_INIT_CONTINUE_ON_ERROR=1 to start the services anyway)",
            script.path.display()
        );
        self.exit_code.get_or_insert(match exit.exit_code() {
            0 => 1,
            code => code,
        });
        self.begin_shutdown(now);
    }

    // ---- the stages ----------------------------------------------------------------

    /// Moves the container forward: next script, services whose turn has come, the main
    /// command, the next step of shutdown.
    fn advance(&mut self, now: Instant) {
        // Each arm either waits (returns) or moves to the next stage and goes round again.
        loop {
            match &mut self.stage {
                Stage::Init { queue, running } => {
                    if running.is_some() {
                        return;
                    }
                    match queue.pop_front() {
                        Some(path) => self.start_script(path, None, now),
                        None => self.stage = Stage::Up,
                    }
                }
                Stage::Up => {
                    self.start_due_services(now);
                    if self.main == Main::Pending && self.boot_settled() {
                        self.start_main(now);
                    }
                    return;
                }
                Stage::StopMain { .. } => {
                    if matches!(self.main, Main::Running { .. }) {
                        return;
                    }
                    self.stage = Stage::StopServices;
                }
                Stage::StopServices => {
                    self.stop_due_services(now);
                    if !self.slots.iter().all(|slot| slot.service.is_stopped()) {
                        return;
                    }
                    let finish = match scripts::list(&self.finish_dir) {
                        Ok(scripts) => scripts.runnable,
                        Err(err) => {
                            warn!("cannot read {}: {err}", self.finish_dir.display());
                            Vec::new()
                        }
                    };
                    self.stage = Stage::Finish {
                        queue: finish.into(),
                        running: None,
                    };
                }
                Stage::Finish { queue, running } => {
                    if running.is_some() {
                        return;
                    }
                    match queue.pop_front() {
                        Some(path) => self.start_script(
                            path,
                            Some(deadline_after(now, self.finish_timeout)),
                            now,
                        ),
                        None => {
                            debug!(orphans_reaped = self.orphans_reaped, "sweeping");
                            sweep::signal_all(self.scope, libc::SIGTERM);
                            sweep::signal_all(self.scope, libc::SIGCONT);
                            self.stage = Stage::Sweep {
                                deadline: deadline_after(now, self.grace),
                            };
                        }
                    }
                }
                Stage::Sweep { .. } | Stage::Killing => return,
            }
        }
    }

    fn begin_shutdown(&mut self, now: Instant) {
        if matches!(self.stage, Stage::Init { .. } | Stage::Up) {
            self.emit(Event::Shutdown {
                exit_code: self.exit_code,
            });
        }
        match self.stage {
            Stage::Init { ref running, .. } => {
                if let Some(script) = running {
                    let _ = signals::send(-script.pid, libc::SIGTERM);
                }
                self.stage = Stage::StopServices;
            }
            Stage::Up => {
                if self.main == Main::Pending {
                    self.main = Main::Absent;
                }
                self.stage = Stage::StopMain {
                    deadline: deadline_after(now, self.grace),
                };
                if let Main::Running { pid } = self.main
                    && self.exit_code.is_some()
                {
                    // Shutdown for another reason than a signal: ask the main command too,
                    // as a `docker stop` would (rewritten as it would be).
                    if let Some(signo) = self.rewrite.apply(libc::SIGTERM) {
                        let _ = signals::send(-pid, signo);
                    }
                }
            }
            _ => {}
        }
    }

    fn kill_everything(&mut self) {
        sweep::signal_all(self.scope, libc::SIGKILL);
        self.stage = Stage::Killing;
    }

    fn start_script(&mut self, path: PathBuf, deadline: Option<Instant>, now: Instant) {
        let argv = [path.clone().into_os_string()];
        match spawn::spawn(&argv, Setup::default(), self.signals.child_reset()) {
            Ok(pid) => {
                debug!("running {}", path.display());
                let script = RunningScript {
                    pid,
                    path,
                    deadline,
                };
                if let Stage::Init { running, .. } | Stage::Finish { running, .. } = &mut self.stage
                {
                    *running = Some(script);
                }
            }
            Err(err) => {
                let exit = Exit::Code(err.exit_code);
                error!("{}", err.message);
                if let Stage::Init { running, .. } | Stage::Finish { running, .. } = &mut self.stage
                {
                    *running = Some(RunningScript {
                        pid: 0,
                        path,
                        deadline: None,
                    });
                }
                self.on_script_exit(exit, now);
            }
        }
    }

    /// True when every service wanted at boot is ready, has stopped for good, or cannot
    /// start because it waits for one that will not come up by itself.
    fn boot_settled(&self) -> bool {
        (0..self.slots.len()).all(|index| {
            let service = &self.slots[index].service;
            !service.wanted
                || service.is_ready()
                || matches!(service.state, State::Failed | State::Finished)
                || self.blocked_for_good(index)
        })
    }

    /// Whether a service that is down waits, directly or not, for a service that is down
    /// and not wanted (a `down` file), failed, or finished after an unsuccessful run (one
    /// that finished successfully counts as up). (`after` has no cycles.)
    fn blocked_for_good(&self, index: usize) -> bool {
        let service = &self.slots[index].service;
        service.state == State::Down
            && service.spec.after.iter().any(|name| {
                self.by_name.get(name).is_some_and(|&dep| {
                    let dependency = &self.slots[dep].service;
                    (!dependency.wanted && dependency.is_stopped())
                        || dependency.is_down_for_good()
                        || self.blocked_for_good(dep)
                })
            })
    }

    fn start_main(&mut self, now: Instant) {
        let setup = Setup {
            take_terminal: true,
            ..Setup::default()
        };
        match spawn::spawn(&self.command, setup, self.signals.child_reset()) {
            Ok(pid) => {
                debug!(pid, "started main command");
                self.main = Main::Running { pid };
            }
            Err(err) => {
                error!("{}", err.message);
                self.main = Main::NotStarted {
                    exit_code: err.exit_code,
                };
                self.begin_shutdown(now);
            }
        }
    }

    /// Starts every wanted, down service whose `after` services are all ready.
    fn start_due_services(&mut self, now: Instant) {
        for index in 0..self.slots.len() {
            let service = &self.slots[index].service;
            if service.wanted && service.state == State::Down && self.dependencies_ready(index) {
                let actions = self.slots[index].service.start();
                self.apply(index, actions, now);
            }
        }
    }

    fn dependencies_ready(&self, index: usize) -> bool {
        self.slots[index].service.spec.after.iter().all(|name| {
            self.by_name
                .get(name)
                .is_some_and(|&other| self.slots[other].service.is_up_for_dependents())
        })
    }

    /// Stops every running service that no running service comes after.
    fn stop_due_services(&mut self, now: Instant) {
        for index in 0..self.slots.len() {
            if self.slots[index].service.is_stopped() && !self.slots[index].service.wanted {
                continue;
            }
            let name = self.slots[index].service.name();
            let dependents_down = self.slots.iter().all(|other| {
                !other.service.spec.after.iter().any(|n| n == name) || other.service.is_stopped()
            });
            if dependents_down && self.slots[index].service.wanted {
                let mut actions = self.slots[index].service.stop(now);
                if let Some(pipe) = &self.slots[index].from_service {
                    // A logger whose service is down: no stop signal, but end-of-file
                    // once it has read the last lines (SIGKILL after its stop-timeout).
                    pipe.close_write_end();
                    actions.retain(|action| !matches!(action, Action::Signal { .. }));
                }
                self.apply(index, actions, now);
            }
        }
    }

    // ---- carrying out a service's actions ------------------------------------------

    fn apply(&mut self, index: usize, actions: Vec<Action>, now: Instant) {
        self.observe(index, now);
        for action in actions {
            match action {
                Action::Spawn if !matches!(self.stage, Stage::Init { .. } | Stage::Up) => {
                    // Only a restart can come up during shutdown: the service stays down.
                    info!(
                        "{}: not restarted (shutting down)",
                        self.slots[index].service.name()
                    );
                    self.slots[index].service.wanted = false;
                }
                Action::Spawn => {
                    let follow_up = match self.spawn_service(index) {
                        Ok(pid) => {
                            info!("{}: started (pid {pid})", self.slots[index].service.name());
                            self.slots[index].runs += 1;
                            self.emit(Event::Started {
                                service: self.slots[index].service.name().to_owned(),
                                pid,
                            });
                            self.slots[index].service.on_spawned(pid, now)
                        }
                        Err(err) => {
                            error!("{}: {}", self.slots[index].service.name(), err.message);
                            self.emit(Event::SpawnFailed {
                                service: self.slots[index].service.name().to_owned(),
                                code: err.exit_code,
                                message: err.message.clone(),
                            });
                            self.slots[index]
                                .service
                                .on_spawn_failed(err.exit_code, now)
                        }
                    };
                    self.apply(index, follow_up, now);
                }
                Action::Signal { pgid, signo } => {
                    let _ = signals::send(-pgid, signo);
                    let _ = signals::send(-pgid, libc::SIGCONT);
                }
                Action::Kill { pgid } => {
                    let _ = signals::send(-pgid, libc::SIGKILL);
                }
                Action::RunFinish { exit } => {
                    let follow_up = self.run_finish(index, exit, now);
                    self.apply(index, follow_up, now);
                }
                Action::ProbeReadiness => self.probe(index, now),
                Action::ShutDownContainer { exit_code } => {
                    self.exit_code.get_or_insert(exit_code);
                    self.begin_shutdown(now);
                }
            }
        }
    }

    fn spawn_service(&mut self, index: usize) -> Result<i32, spawn::SpawnError> {
        let slot = &mut self.slots[index];
        let spec = &slot.service.spec;
        let stdin = match &slot.from_service {
            Some(pipe) => pipe
                .reader_for_child()
                .map_err(|e| setup_error("the log pipe", e))?,
            None => Stdio::null(),
        };
        let (stdout, stderr) = slot.output_for_child()?;
        let notify = match spec.ready {
            Readiness::NotifyFd(fd) => {
                let (reader, writer) =
                    NotifyPipe::new().map_err(|e| setup_error("notification-fd", e))?;
                Some((fd, reader, writer))
            }
            _ => None,
        };
        let setup = Setup {
            cwd: Some(&spec.working_dir),
            env: service_env(spec),
            credentials: spec.user.as_ref(),
            umask: spec.umask,
            stdin: Some(stdin),
            stdout,
            stderr,
            extra_fd: notify.as_ref().map(|(fd, _, writer)| (*fd, writer)),
            take_terminal: false,
        };
        let argv = [spec.run.clone().into_os_string()];
        let pid = spawn::spawn(&argv, setup, self.signals.child_reset())?;
        if let Some((_, reader, writer)) = notify {
            drop::<OwnedFd>(writer);
            let registered = self.epoll.add(
                reader.as_fd(),
                EpollEvent::new(EpollFlags::EPOLLIN, token(index, NOTIFY)),
            );
            match registered {
                Ok(()) => slot.notify = Some(reader),
                Err(err) => warn!("{}: cannot watch its notification-fd: {err}", spec.name),
            }
        }
        Ok(pid)
    }

    fn run_finish(&mut self, index: usize, exit: Exit, now: Instant) -> Vec<Action> {
        let service = &self.slots[index].service;
        let Some(finish) = &service.spec.finish else {
            return self.slots[index].service.on_finish_exit(Some(0), now);
        };
        // s6's convention: the exit code (256 if killed by a signal), then the signal.
        let (code, signal) = match exit {
            Exit::Code(code) => (code, 0),
            Exit::Signal(signo) => (256, signo),
        };
        let argv = [
            finish.clone().into_os_string(),
            code.to_string().into(),
            signal.to_string().into(),
        ];
        let spawned = self.slots[index]
            .output_for_child()
            .and_then(|(stdout, stderr)| {
                let setup = Setup {
                    cwd: Some(&service.spec.working_dir),
                    env: service_env(&service.spec),
                    credentials: service.spec.user.as_ref(),
                    umask: service.spec.umask,
                    stdout,
                    stderr,
                    ..Setup::default()
                };
                spawn::spawn(&argv, setup, self.signals.child_reset())
            });
        match spawned {
            Ok(pid) => {
                self.slots[index].service.on_finish_spawned(pid, now);
                Vec::new()
            }
            Err(err) => {
                error!("{}: {}", self.slots[index].service.name(), err.message);
                self.slots[index]
                    .service
                    .on_finish_exit(Some(err.exit_code), now)
            }
        }
    }

    /// Starts one readiness probe (TCP connect or command) for a starting service.
    fn probe(&mut self, index: usize, now: Instant) {
        let slot = &mut self.slots[index];
        if !matches!(slot.service.state, State::Starting { .. }) {
            return;
        }
        match slot.service.spec.ready.clone() {
            Readiness::Tcp(addr) => match TcpProbe::connect(addr) {
                Ok(probe) => {
                    let registered = self.epoll.add(
                        probe.as_fd(),
                        EpollEvent::new(EpollFlags::EPOLLOUT, token(index, TCP)),
                    );
                    match registered {
                        Ok(()) => slot.tcp = Some(probe),
                        Err(_) => slot.probe_at = Some(now + PROBE_INTERVAL),
                    }
                }
                Err(_) => slot.probe_at = Some(now + PROBE_INTERVAL),
            },
            Readiness::Command(command) => {
                let spec = &slot.service.spec;
                let argv: [OsString; 3] = ["/bin/sh".into(), "-c".into(), command.into()];
                let setup = Setup {
                    cwd: Some(&spec.working_dir),
                    env: service_env(spec),
                    credentials: spec.user.as_ref(),
                    umask: spec.umask,
                    stdout: Some(Stdio::null()),
                    stderr: Some(Stdio::null()),
                    stdin: Some(Stdio::null()),
                    ..Setup::default()
                };
                match spawn::spawn(&argv, setup, self.signals.child_reset()) {
                    Ok(pid) => slot.probe_pid = Some(pid),
                    Err(err) => {
                        warn!("{}: readiness command: {}", spec.name, err.message);
                        slot.probe_at = Some(now + PROBE_INTERVAL);
                    }
                }
            }
            Readiness::Started | Readiness::NotifyFd(_) => {}
        }
    }
}

fn token(index: usize, kind: u64) -> u64 {
    ((index as u64 + 1) << 2) | kind
}

/// What a service's programs (`run`, `finish`, the readiness command) add to the
/// container's environment: `PIDVISOR_SERVICE`, then the `env` table.
fn service_env(spec: &ServiceSpec) -> Vec<(&str, &str)> {
    let name = ("PIDVISOR_SERVICE", spec.name.as_str());
    let table = spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    std::iter::once(name).chain(table).collect()
}

/// The logger of service `name` is supervised as a service of its own under this name.
fn logger_name(name: &str) -> String {
    format!("{name}/log")
}

/// The logger's spec: restarted always, output inherited, stopped after its service.
fn logger_spec(service: &ServiceSpec, run: PathBuf) -> ServiceSpec {
    let dir = service.dir.join("log");
    ServiceSpec {
        name: logger_name(&service.name),
        working_dir: dir.clone(),
        dir,
        run,
        finish: None,
        logger: None,
        start_down: false,
        restart: RestartPolicy::Always,
        critical: false,
        after: Vec::new(),
        ready: Readiness::Started,
        log_prefix: false,
        ..service.clone()
    }
}

/// A descriptor for a child could not be made: reported like a program that cannot run.
fn setup_error(what: &str, err: io::Error) -> spawn::SpawnError {
    spawn::SpawnError {
        exit_code: 126,
        message: format!("cannot set up {what}: {err}"),
    }
}

/// True when no process is left in process group `pgid`.
fn group_is_empty(pgid: i32) -> bool {
    matches!(signals::send(-pgid, 0), Err(err) if err.raw_os_error() == Some(libc::ESRCH))
}

fn log_exit(name: &str, exit: Exit, stopping: bool) {
    match exit {
        _ if stopping => info!("{name}: stopped ({})", describe_exit(exit)),
        Exit::Code(0) => info!("{name}: exited with code 0"),
        Exit::Code(code) => warn!("{name}: exited with code {code}"),
        Exit::Signal(signo) => warn!("{name}: killed by {}", signals::name(signo)),
    }
}

fn describe_exit(exit: Exit) -> String {
    match exit {
        Exit::Code(code) => format!("exit code {code}"),
        Exit::Signal(signo) => format!("killed by {}", signals::name(signo)),
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
