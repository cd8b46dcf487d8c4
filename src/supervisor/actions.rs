//! Carrying out what a service's state machine decided ([`Action`]): spawning its `run`
//! with its output, user, umask and notification pipe, signalling or killing its group,
//! running its `finish` script, probing its readiness, or shutting the container down.
//! This is where the supervisor acts on services; the decisions stay in
//! [`crate::services::service`].

use std::ffi::OsString;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Instant;

use nix::sys::epoll::{EpollEvent, EpollFlags};
use tracing::{error, info, warn};

use super::checks::Purpose;
use super::state::{NOTIFY, PROBE_INTERVAL, Stage, Supervisor, TCP, setup_error, token};
use crate::init::reaper::Exit;
use crate::init::signals::ChildSignalReset;
use crate::init::spawn::{ChildIo, Inherited, Setup, SpawnError};
use crate::init::{signals, spawn};
use crate::output::events::Event;
use crate::services::probe::{NotifyPipe, TcpProbe};
use crate::services::service::{Action, State};
use crate::services::spec::{Check, Readiness, ServiceSpec};

/// A service's `run`, forked, whose `exec` is not confirmed yet, with the notification
/// pipe that becomes the slot's once it is.
pub(super) struct StartingRun {
    child: spawn::Starting,
    notify: Option<NotifyPipe>,
}

impl Supervisor {
    pub(super) fn apply(&mut self, index: usize, actions: Vec<Action>, now: Instant) {
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
                    let started = self.start_service(index);
                    self.spawned(index, started, now);
                }
                Action::Signal { pgid, signo } => {
                    let _ = signals::send(-pgid, signo);
                    let _ = signals::send(-pgid, libc::SIGCONT);
                    if let Some(group) = &self.slots[index].cgroup {
                        group.signal_outside(pgid, signo);
                        group.signal_outside(pgid, libc::SIGCONT);
                    }
                }
                Action::Kill { pgid } => {
                    let _ = signals::send(-pgid, libc::SIGKILL);
                    if let Some(group) = &self.slots[index].cgroup {
                        group.kill_all();
                        self.slots[index].cgroup_killed = true;
                    }
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

    /// Waits for the `exec` of service `index`'s `run`, reports the outcome and applies
    /// what follows.
    pub(super) fn spawned(
        &mut self,
        index: usize,
        started: Result<StartingRun, SpawnError>,
        now: Instant,
    ) {
        let result = started.and_then(|run| {
            let pid = run.child.wait()?;
            self.slots[index].notify = run.notify;
            Ok(pid)
        });
        let follow_up = match result {
            Ok(pid) => {
                info!("{}: started (pid {pid})", self.slots[index].service.name());
                self.slots[index].runs += 1;
                self.slots[index].oom_baseline = self.oom.count();
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

    /// Forks service `index`'s `run` with its output, user and notification pipe,
    /// without waiting for its `exec` (which [`Supervisor::spawned`] then waits for).
    pub(super) fn start_service(&mut self, index: usize) -> Result<StartingRun, SpawnError> {
        let slot = &mut self.slots[index];
        let (stdout, stderr) = slot.output_for_child()?;
        let spec = &slot.service.spec;
        let stdin = match &slot.from_service {
            Some(pipe) => pipe
                .reader_for_child()
                .map(ChildIo::Fd)
                .map_err(|e| setup_error("the log pipe", e))?,
            None => ChildIo::Null,
        };
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
            inherited: Some(self.environment.get_or_init(Inherited::capture)),
            credentials: spec.user.as_ref(),
            umask: spec.umask,
            stdin: Some(stdin),
            stdout,
            stderr,
            extra_fd: notify.as_ref().map(|(fd, _, writer)| (*fd, writer)),
            take_terminal: false,
            cgroup: slot.cgroup.as_ref(),
            cgroup_killed: slot.cgroup_killed,
        };
        let argv = [spec.run.clone().into_os_string()];
        let child = spawn::start(&argv, setup, self.signals.child_reset())?;
        let notify = notify.and_then(|(_, reader, writer)| {
            drop::<OwnedFd>(writer);
            let registered = self.epoll.add(
                reader.as_fd(),
                EpollEvent::new(EpollFlags::EPOLLIN, token(index, NOTIFY)),
            );
            match registered {
                Ok(()) => Some(reader),
                Err(err) => {
                    warn!("{}: cannot watch its notification-fd: {err}", spec.name);
                    None
                }
            }
        });
        Ok(StartingRun { child, notify })
    }

    fn run_finish(&mut self, index: usize, exit: Exit, now: Instant) -> Vec<Action> {
        let Some(finish) = self.slots[index].service.spec.finish.clone() else {
            return self.slots[index].service.on_finish_exit(Some(0), now);
        };
        let output = self.slots[index].output_for_child();
        let service = &self.slots[index].service;
        // s6's convention: the exit code (256 if killed by a signal), then the signal.
        let (code, signal) = match exit {
            Exit::Code(code) => (code, 0),
            Exit::Signal(signo) => (256, signo),
        };
        let argv = [
            finish.into_os_string(),
            code.to_string().into(),
            signal.to_string().into(),
        ];
        let spawned = output.and_then(|(stdout, stderr)| {
            let setup = Setup {
                cwd: Some(&service.spec.working_dir),
                env: service_env(&service.spec),
                inherited: Some(self.environment.get_or_init(Inherited::capture)),
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
    pub(super) fn probe(&mut self, index: usize, now: Instant) {
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
                let environment = self.environment.get_or_init(Inherited::capture);
                match spawn_check_command(spec, &command, environment, self.signals.child_reset()) {
                    Ok(pid) => slot.probe_pid = Some(pid),
                    Err(err) => {
                        warn!("{}: readiness command: {}", spec.name, err.message);
                        slot.probe_at = Some(now + PROBE_INTERVAL);
                    }
                }
            }
            Readiness::Http(target) => {
                self.start_check(index, Purpose::Ready, Check::Http(target), now)
            }
            Readiness::Started | Readiness::NotifyFd(_) => {}
        }
    }
}

/// `/bin/sh -c COMMAND` as the service's programs run (its folder, environment, user and
/// umask, a process group of its own), with no input or output: a readiness or liveness
/// check. Its pid.
pub(super) fn spawn_check_command(
    spec: &ServiceSpec,
    command: &str,
    inherited: &Inherited,
    signals: ChildSignalReset,
) -> Result<i32, SpawnError> {
    let argv: [OsString; 3] = ["/bin/sh".into(), "-c".into(), command.into()];
    let setup = Setup {
        cwd: Some(&spec.working_dir),
        env: service_env(spec),
        inherited: Some(inherited),
        credentials: spec.user.as_ref(),
        umask: spec.umask,
        stdout: Some(ChildIo::Null),
        stderr: Some(ChildIo::Null),
        stdin: Some(ChildIo::Null),
        ..Setup::default()
    };
    spawn::spawn(&argv, setup, signals)
}

/// What a service's programs (`run`, `finish`, the readiness command) add to the
/// container's environment: `PIDVISOR_SERVICE`, then the `env` table.
pub(super) fn service_env(spec: &ServiceSpec) -> Vec<(&str, &str)> {
    let name = ("PIDVISOR_SERVICE", spec.name.as_str());
    let table = spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    std::iter::once(name).chain(table).collect()
}
