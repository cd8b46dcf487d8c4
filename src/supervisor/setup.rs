//! Setting up before the loop: becoming the reaper, raising the open-files limit, the
//! epoll set, the control socket, the list of init scripts, and a slot for each service
//! (and for its logger, supervised as a service of its own). A failure here is fatal: it is
//! reported at once, before anything runs (see the error policy in `mod.rs`). With no init
//! script and no service, the main command is forked first of all of this, so that it
//! execs while the rest is set up.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::io;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::rc::Rc;

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use tracing::{debug, error, info, warn};

use super::main_command::main_setup;
use super::sd_notify::SdNotify;
use super::stages::START_SLICE;
use super::state::{
    Main, Observed, SIGNALS, STDERR, STDOUT, Slot, Stage, Startup, Supervisor, token,
};
use crate::cli::Options;
use crate::control::server::ControlServer;
use crate::init::cgroup::Cgroups;
use crate::init::notify::Notifier;
use crate::init::oom::OomCounter;
use crate::init::signals::SignalQueue;
use crate::init::sweep::Scope;
use crate::init::{limits, spawn};
use crate::output::events::{Clock, Event, EventLog};
use crate::output::logs::{LineRelay, LogPipe, Scratch, Sink};
use crate::output::outlet;
use crate::s6::runtime;
use crate::services::service::Service;
use crate::services::spec::{Readiness, RestartPolicy, ServiceSpec};
use crate::services::{config, scan, scripts};

/// Descriptors kept free while the services' pipes are made (see
/// [`limits::HeldDescriptors`]): a spawn takes up to about 8 for a moment. One more is
/// kept per program to supervise (a service, its logger), for the report pipe its start
/// holds until its `exec`: the starts are not waited for one by one.
const DESCRIPTOR_RESERVE: usize = 16;

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
        for sink in outlet::outlets() {
            let fallback = outlet::lock(sink).fallback().map(str::to_owned);
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
        let scanned = scan::scan(&options.services_dir);
        // Nothing to wait for (no init script, no service): the main command starts now,
        // before what it does not need (the events file, the control socket, the
        // cgroups), which comes up while it execs. The s6 runtime folder comes first
        // where `with-contenv` is installed, the one program that could read it then: a
        // main command made for s6-overlay reads its environment there.
        let nothing_to_wait_for = init.runnable.is_empty()
            && scanned.services.is_empty()
            && scanned.problems.is_empty()
            && !options.command.is_empty();
        let early_main = nothing_to_wait_for.then(|| {
            if let Some(dir) = &options.s6_dir
                && runtime::with_contenv_installed(std::env::var_os("PATH").as_deref())
            {
                write_s6_runtime(scope, dir, &[]);
            }
            spawn::start(&options.command, main_setup(), signals.child_reset())
        });
        let events = EventLog::new(Clock::new(), options.events_file.as_deref());
        // PID 1 never dies of its own accord: without a socket, it runs uncontrolled.
        let control = match ControlServer::bind(&options.socket, &epoll) {
            Ok(server) => Some(server),
            Err(err) => {
                let fix = match err.kind() {
                    io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
                        "; give it a writable place with --socket or PIDVISOR_SOCKET"
                    }
                    _ => "",
                };
                warn!("no control socket, pidvisorctl will not work: {err}{fix}");
                None
            }
        };
        // Without a service there is nothing to put in one (the main command stays in
        // pidvisor's own): no folder to make at the start and to remove at the end.
        let cgroups = if scanned.services.is_empty() {
            None
        } else {
            service_cgroups(options.cgroups)
        };
        let mut supervisor = Supervisor {
            signals,
            epoll,
            scope,
            grace: options.grace,
            shutdown_delay: options.shutdown_delay,
            drain: None,
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
            main_oom_baseline: None,
            oom: OomCounter::open(),
            early_main_failure: None,
            command: options.command.clone(),
            slots: Vec::new(),
            cgroups,
            by_name: HashMap::new(),
            stage: Stage::Init {
                queue: init.runnable.into(),
                running: None,
            },
            exit_code: None,
            scratch: Scratch::default(),
            orphans_reaped: 0,
            reaped: Vec::new(),
            owned_pids: Vec::new(),
            events,
            control,
            waiters: Vec::new(),
            time_scale: options.time_scale.get(),
            output_turn: 0,
            main_wait: options.main_wait,
            main_due: None,
            sd_notify: notify_host(options),
            environment: OnceCell::new(),
            startup: Startup::Busy,
        };
        supervisor.load_services(scanned, options.services_stop_timeout)?;
        for note in &options.notes {
            warn!("{note}");
        }
        if let Some(dir) = &options.s6_dir
            && !nothing_to_wait_for
        {
            let services: Vec<(&str, &std::path::Path)> = supervisor
                .slots
                .iter()
                .filter(|slot| slot.from_service.is_none())
                .map(|slot| (slot.service.name(), slot.service.spec.dir.as_path()))
                .collect();
            write_s6_runtime(supervisor.scope, dir, &services);
        }
        // Confirmed before the loop's first reaping, which would take its exit for an
        // orphan's were it not known as the main command by then.
        match early_main.map(|started| started.and_then(spawn::Starting::wait)) {
            Some(Ok(pid)) => supervisor.main_started(pid),
            Some(Err(err)) => supervisor.early_main_failure = Some(err),
            None => {}
        }
        Ok(supervisor)
    }

    /// Loads the services found in the services folder; every problem is logged and the
    /// service left out. `stop_timeout` is for the services whose service.toml sets none.
    fn load_services(
        &mut self,
        scanned: scan::ScanResult,
        stop_timeout: Option<std::time::Duration>,
    ) -> io::Result<()> {
        for problem in &scanned.problems {
            error!("{problem}");
            self.emit(Event::ConfigProblem {
                message: problem.to_string(),
            });
        }
        // A group of slots per start under way: at most a slice of them, and no more than
        // the services' programs (`run`, `log/run`) could start together; a start that
        // finds no group free still works (see `spawn`), only slower. A whole slice is 160
        // descriptors to fill, to list in /proc/self/fd and for every child to unshare:
        // with one service, they made its start 0.7 ms slower (bench/floor.py's harness).
        let groups = START_SLICE.min(2 * scanned.services.len());
        if groups > 0
            && let Err(err) = spawn::reserve_low_slots(groups)
        {
            warn!("children copy pidvisor's descriptor table: no slots for them ({err})");
        }
        // Released once every service's pipes are made: what running them needs.
        let mut reserve = (!scanned.services.is_empty())
            .then(|| limits::HeldDescriptors::hold(self.epoll.0.as_fd(), DESCRIPTOR_RESERVE));
        let mut left_out = Vec::new();
        for spec in scanned.services {
            let name = spec.name.clone();
            if let Some(reserve) = &mut reserve {
                let programs = 1 + usize::from(spec.logger.is_some());
                reserve.hold_more(self.epoll.0.as_fd(), programs);
            }
            match self.prepare_slots(spec, stop_timeout) {
                Ok(slots) => {
                    for slot in slots {
                        self.push_slot(slot)?;
                    }
                }
                Err(err) => {
                    let fix = limits::out_of_descriptors_hint(&err)
                        .map_or_else(String::new, |fix| format!(": {fix}"));
                    let message = format!(
                        "{name}: left out: cannot make its output pipes (pipe2): {err}{fix}"
                    );
                    error!("{message}");
                    self.emit(Event::ConfigProblem { message });
                    left_out.push(name);
                }
            }
        }
        drop(reserve);
        for slot in &self.slots {
            if let Some(dep) = slot
                .service
                .spec
                .after
                .iter()
                .find(|d| left_out.contains(d))
            {
                warn!(
                    "{}: will not start: it comes after {dep}, which was left out",
                    slot.service.name()
                );
            }
        }
        if !self.slots.is_empty() {
            let names: Vec<&str> = self.slots.iter().map(|s| s.service.name()).collect();
            info!("{} services: {}", names.len(), names.join(", "));
        }
        Ok(())
    }

    /// The slots of one service: its logger's first (if any), then its own.
    /// `stop_timeout` applies when its service.toml sets none.
    fn prepare_slots(
        &self,
        spec: ServiceSpec,
        stop_timeout: Option<std::time::Duration>,
    ) -> io::Result<Vec<Slot>> {
        let logger = spec.logger.clone();
        let mut spec = spec.with_time_scale(self.time_scale);
        if let Some(timeout) = stop_timeout
            && !config::sets_key(&spec.dir, "stop-timeout")
        {
            spec.stop_timeout = timeout;
        }
        if logger.is_some() {
            spec.after.push(logger_name(&spec.name));
        }
        let mut slot = self.new_slot(spec.clone())?;
        let Some(run) = logger else {
            return Ok(vec![slot]);
        };
        let pipe = Rc::new(LogPipe::new()?);
        slot.to_logger = Some(Rc::clone(&pipe));
        let mut logger_slot = self.new_slot(logger_spec(&spec, run))?;
        logger_slot.from_service = Some(pipe);
        Ok(vec![logger_slot, slot])
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
        let cgroup = self.cgroups.as_ref().and_then(|cgroups| {
            cgroups
                .group(&spec.name)
                .map_err(|err| warn!("{}: no cgroup of its own (mkdir): {err}", spec.name))
                .ok()
        });
        Ok(Slot {
            cgroup,
            cgroup_killed: false,
            service: Service::new(spec),
            stdout,
            stderr,
            to_logger: None,
            from_service: None,
            notify: None,
            tcp: None,
            probe_pid: None,
            probe_at: None,
            check: None,
            check_at: None,
            liveness: Default::default(),
            oom_baseline: None,
            last_exit_oom: false,
            observed: Observed::default(),
            runs: 0,
            restart_pending: false,
        })
    }

    fn push_slot(&mut self, mut slot: Slot) -> io::Result<()> {
        let index = self.slots.len();
        for (relay, kind) in [(&mut slot.stdout, STDOUT), (&mut slot.stderr, STDERR)] {
            if let Some(relay) = relay {
                self.epoll
                    .add(
                        relay.as_fd(),
                        EpollEvent::new(EpollFlags::EPOLLIN, token(index, kind)),
                    )
                    .map_err(|e| io::Error::other(format!("epoll_ctl(service pipe): {e}")))?;
                relay.watched = true;
            }
        }
        self.by_name.insert(slot.service.name().to_owned(), index);
        self.slots.push(slot);
        Ok(())
    }
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
        health: None,
        log_prefix: false,
        ..service.clone()
    }
}

/// The host's `NOTIFY_SOCKET`, if set; the children do not get it unless asked to.
fn notify_host(options: &Options) -> Option<SdNotify> {
    let address = options.notify_socket.as_ref()?;
    if !options.keep_notify_socket {
        // SAFETY: pidvisor has one thread, and no other code reads the environment now.
        unsafe { std::env::remove_var("NOTIFY_SOCKET") };
    }
    match Notifier::open(address) {
        Ok(notifier) => Some(SdNotify::new(notifier)),
        Err(err) => {
            warn!(
                "NOTIFY_SOCKET={}: {err}; the host will not be told",
                address.display()
            );
            None
        }
    }
}

/// The folder for the services' cgroups, or why there is none (then process groups alone
/// track a service's processes: see [`crate::init::cgroup`]).
fn service_cgroups(wanted: bool) -> Option<Cgroups> {
    if !wanted {
        info!("per-service cgroups off (--no-cgroups): process groups only");
        return None;
    }
    match Cgroups::create() {
        Ok(cgroups) => {
            info!("per-service cgroups in {}", cgroups.root().display());
            Some(cgroups)
        }
        Err(why) => {
            info!(
                "no per-service cgroups: {why}; process groups only (a process that leaves \
                 its service's group runs on until the container stops)"
            );
            None
        }
    }
}

/// s6-overlay's runtime folder, for the scripts of images made for it (see
/// [`crate::s6::runtime`]); loggers are found through their service's folder.
fn write_s6_runtime(scope: Scope, dir: &std::path::Path, services: &[(&str, &std::path::Path)]) {
    for problem in runtime::write(dir, std::env::vars_os(), services) {
        // In a container, scripts count on it; elsewhere (a development shell, not
        // root) it is of no use, and no news.
        match scope {
            Scope::Namespace => warn!("s6 compatibility: {problem}"),
            Scope::DescendantsOf(_) => debug!("s6 compatibility: {problem}"),
        }
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
