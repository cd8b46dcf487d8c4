//! Carrying out control requests: status snapshots, start, stop, restart, signal, wait,
//! shutdown, the event stream, health and ping (answered in `health`), and the waits that
//! end a request once a service has reached the state it asked for (or cannot, or the
//! timeout has passed).
//!
//! The connection work is [`crate::control`]'s; the decisions stay with the state machine
//! ([`crate::services::service`]): a request only calls its `start`/`stop` like the supervisor does.
//! A wait is a [`Waiter`], checked once per round of the event loop, and its timeout is one
//! more deadline of the loop: nothing here blocks.

use std::time::{Duration, Instant};

use nix::sys::epoll::EpollFlags;
use serde_json::json;

use super::state::{Stage, Supervisor};
use super::waits::{Goal, Progress, Waiter};
use crate::control::protocol::{
    self, ErrorCode, LastCheck, LastExit, Refusal, Request, ServiceStatus, StateName,
};
use crate::control::server::ClientId;
use crate::duration::deadline_after;
use crate::init::reaper::Exit;
use crate::init::signals;
use crate::output::events::{rfc3339, seconds};
use crate::services::service::State;

type Outcome = Result<Option<String>, Refusal>;

impl Supervisor {
    /// A control socket or client is ready: do the I/O, then carry out what came in.
    pub(super) fn on_control_ready(&mut self, token: u64, flags: EpollFlags) {
        let now = Instant::now();
        if let Some(control) = &mut self.control {
            control.on_ready(&self.epoll, token, flags, now);
        }
        self.serve_requests(now);
    }

    /// Carries out every request line that can be taken now: after I/O on the socket,
    /// and after a wait has ended (the client may have sent its next request meanwhile).
    fn serve_requests(&mut self, now: Instant) {
        loop {
            let Some(control) = &mut self.control else {
                return;
            };
            let Some((client, request)) = control.next_request(&self.epoll, now) else {
                return;
            };
            match self.carry_out(client, request, now) {
                Ok(Some(line)) => self.reply(client, &line, now),
                Ok(None) => {}
                Err(refusal) => self.reply(client, &protocol::error(&refusal), now),
            }
        }
    }

    /// The earliest client timeout or wait timeout.
    pub(super) fn control_deadline(&self) -> Option<Instant> {
        let clients = self.control.as_ref().and_then(|c| c.deadline());
        let waits = self.waiters.iter().filter_map(|w| w.deadline).min();
        clients.into_iter().chain(waits).min()
    }

    pub(super) fn on_control_deadlines(&mut self, now: Instant) {
        if let Some(control) = &mut self.control {
            control.on_deadlines(&self.epoll, now);
        }
        self.check_waiters(now);
    }

    fn reply(&mut self, client: ClientId, line: &str, now: Instant) {
        if let Some(control) = &mut self.control {
            control.reply(&self.epoll, client, line, now);
        }
    }

    /// Does what was asked. `Ok(Some(line))`: the reply now; `Ok(None)`: later.
    fn carry_out(&mut self, client: ClientId, request: Request, now: Instant) -> Outcome {
        match request {
            Request::Status { services } => {
                let indexes = if services.is_empty() {
                    (0..self.slots.len()).collect()
                } else {
                    services
                        .iter()
                        .map(|name| self.find(name))
                        .collect::<Result<Vec<usize>, Refusal>>()?
                };
                let statuses: Vec<ServiceStatus> = indexes
                    .into_iter()
                    .map(|i| self.status_of(i, now))
                    .collect();
                Ok(Some(protocol::ok(json!({ "services": statuses }))))
            }
            Request::Start { service, timeout } => {
                let index = self.find(&service)?;
                self.refuse_during_shutdown(index)?;
                self.start_by_request(index, now);
                self.wait_for(client, index, Goal::Up, timeout, now)
            }
            Request::Stop { service, timeout } => {
                let index = self.find(&service)?;
                self.slots[index].restart_pending = false;
                let actions = self.slots[index].service.stop(now);
                self.apply(index, actions, now);
                self.wait_for(client, index, Goal::Down, timeout, now)
            }
            Request::Restart { service, timeout } => {
                let index = self.find(&service)?;
                self.refuse_during_shutdown(index)?;
                let after = self.slots[index].runs;
                let actions = self.slots[index].service.stop(now);
                self.apply(index, actions, now);
                self.slots[index].restart_pending = true;
                self.wait_for(client, index, Goal::NewRun { after }, timeout, now)
            }
            Request::Signal { service, signal } => {
                let index = self.find(&service)?;
                let signo = signals::parse(&signal).ok_or_else(|| {
                    Refusal::new(
                        ErrorCode::BadSignal,
                        format!("'{signal}' is not a signal; use a name like TERM, HUP, USR1 or a number"),
                    )
                })?;
                let service = &self.slots[index].service;
                let not_running = || {
                    Refusal::new(
                        ErrorCode::NotRunning,
                        format!(
                            "{} is {}: no process to signal",
                            service.name(),
                            StateName::of(&service.state)
                        ),
                    )
                };
                let pid = service.pid().ok_or_else(not_running)?;
                signals::send(-service.pgid(), signo).map_err(|_| not_running())?;
                Ok(Some(protocol::ok(json!({
                    "service": service.name(),
                    "signal": signals::name(signo),
                    "pid": pid,
                }))))
            }
            Request::Wait {
                service,
                state,
                restarts,
                timeout,
            } => {
                let index = self.find(&service)?;
                let goal = Goal::State {
                    state,
                    restarts: restarts.unwrap_or(0),
                };
                self.wait_for(client, index, goal, timeout, now)
            }
            Request::Shutdown { exit_code } => {
                if !matches!(self.stage, Stage::Init { .. } | Stage::Up) {
                    return Ok(Some(protocol::ok(
                        json!({ "message": "already shutting down" }),
                    )));
                }
                if let Some(code) = exit_code {
                    self.exit_code = Some(i32::from(code));
                }
                tracing::info!("shutdown requested over the control socket");
                self.reply(
                    client,
                    &protocol::ok(json!({ "message": "shutting down" })),
                    now,
                );
                self.begin_shutdown(now);
                Ok(None)
            }
            Request::Health { services } => self.health_reply(&services, now).map(Some),
            Request::Ping => Ok(Some(self.ping_reply())),
            Request::Events { follow } => {
                let Some(control) = &mut self.control else {
                    return Ok(None);
                };
                let history = self.events.history();
                let header = protocol::ok(json!({ "history": history.len(), "follow": follow }));
                control.send(client, &header);
                for line in history {
                    control.send(client, line);
                }
                if follow {
                    control.follow(&self.epoll, client, now);
                } else {
                    control.reply(&self.epoll, client, "", now);
                }
                Ok(None)
            }
        }
    }

    pub(super) fn find(&self, name: &str) -> Result<usize, Refusal> {
        self.by_name.get(name).copied().ok_or_else(|| {
            let names: Vec<&str> = self.slots.iter().map(|s| s.service.name()).collect();
            let known = if names.is_empty() {
                "there are no services".to_owned()
            } else {
                format!("the services are: {}", names.join(", "))
            };
            Refusal::new(
                ErrorCode::UnknownService,
                format!("no service named '{name}'; {known}"),
            )
        })
    }

    fn refuse_during_shutdown(&self, index: usize) -> Result<(), Refusal> {
        if matches!(self.stage, Stage::Init { .. } | Stage::Up) {
            return Ok(());
        }
        Err(Refusal::new(
            ErrorCode::ShuttingDown,
            format!(
                "the container is shutting down: {} will not be started",
                self.slots[index].service.name()
            ),
        ))
    }

    /// Wants service `index` up: started now if it can be, else as soon as it can.
    fn start_by_request(&mut self, index: usize, now: Instant) {
        let can_start_now = matches!(self.stage, Stage::Up) && self.dependencies_ready(index);
        let slot = &mut self.slots[index];
        match slot.service.state {
            // Still on its way down from a stop: start it once it is down.
            State::Stopping { .. } | State::Finishing { .. } if !slot.service.wanted => {
                slot.restart_pending = true;
            }
            // Started by the loop once the init scripts are done and its `after` services
            // are ready.
            State::Down if !can_start_now => slot.service.wanted = true,
            _ => {
                slot.restart_pending = false;
                let actions = slot.service.start();
                self.apply(index, actions, now);
            }
        }
    }

    /// Starts the services that a restart (or a start during their stop) took down.
    pub(super) fn restart_pending_services(&mut self, now: Instant) {
        for index in 0..self.slots.len() {
            let slot = &mut self.slots[index];
            if !slot.restart_pending || !slot.service.is_stopped() {
                continue;
            }
            slot.restart_pending = false;
            if matches!(self.stage, Stage::Init { .. } | Stage::Up) {
                self.start_by_request(index, now);
            }
        }
    }

    fn wait_for(
        &mut self,
        client: ClientId,
        index: usize,
        goal: Goal,
        timeout: Option<f64>,
        now: Instant,
    ) -> Outcome {
        let timeout = timeout
            .filter(|t| *t > 0.0)
            .and_then(|t| Duration::try_from_secs_f64(t).ok());
        match self.progress(index, goal) {
            Progress::Reached => Ok(Some(self.reached(index))),
            Progress::Unreachable(why) => Err(self.unreachable(index, why)),
            Progress::Pending => {
                self.waiters.push(Waiter {
                    client,
                    index,
                    goal,
                    deadline: timeout.map(|t| deadline_after(now, t)),
                    timeout: timeout.unwrap_or_default(),
                });
                Ok(None)
            }
        }
    }

    /// Ends the waits whose goal is reached or unreachable, or whose time is up.
    pub(super) fn check_waiters(&mut self, now: Instant) {
        if self.waiters.is_empty() {
            return;
        }
        let waiters = std::mem::take(&mut self.waiters);
        let mut answered = false;
        for waiter in waiters {
            if !self
                .control
                .as_ref()
                .is_some_and(|c| c.is_connected(waiter.client))
            {
                continue;
            }
            let line = match self.progress(waiter.index, waiter.goal) {
                Progress::Reached => self.reached(waiter.index),
                Progress::Unreachable(why) => protocol::error(&self.unreachable(waiter.index, why)),
                Progress::Pending if waiter.deadline.is_some_and(|d| d <= now) => {
                    let service = &self.slots[waiter.index].service;
                    let state = StateName::of(&service.state);
                    protocol::error(&Refusal {
                        code: ErrorCode::Timeout,
                        message: format!(
                            "{} is {state}, not {}, after {:?}",
                            service.name(),
                            waiter.goal.describe(),
                            waiter.timeout
                        ),
                        state: Some(state),
                    })
                }
                Progress::Pending => {
                    self.waiters.push(waiter);
                    continue;
                }
            };
            self.reply(waiter.client, &line, now);
            answered = true;
        }
        if answered {
            self.serve_requests(now);
        }
    }

    fn progress(&self, index: usize, goal: Goal) -> Progress {
        let slot = &self.slots[index];
        let service = &slot.service;
        let stopped = !service.wanted && !slot.restart_pending && service.state == State::Down;
        let ended = match service.state {
            State::Failed => Some(format!(
                "it failed (gave up after {} restarts)",
                service.restarts
            )),
            State::Finished => {
                Some("it finished and its restart policy does not restart it".to_owned())
            }
            _ if stopped => Some("it was stopped".to_owned()),
            _ => None,
        };
        match goal {
            Goal::State { state, restarts } => {
                if StateName::of(&service.state) == state && service.restarts >= restarts {
                    Progress::Reached
                } else {
                    Progress::Pending
                }
            }
            Goal::Up => match (service.state, ended) {
                (State::Ready { .. }, _) => Progress::Reached,
                (_, Some(why)) => Progress::Unreachable(why),
                _ => Progress::Pending,
            },
            Goal::Down => {
                if matches!(service.state, State::Down | State::Failed | State::Finished) {
                    Progress::Reached
                } else {
                    Progress::Pending
                }
            }
            Goal::NewRun { after } => match (service.state, ended) {
                (State::Ready { .. }, _) if slot.runs > after => Progress::Reached,
                (_, Some(why)) if slot.runs > after || stopped => Progress::Unreachable(why),
                _ => Progress::Pending,
            },
        }
    }

    fn reached(&self, index: usize) -> String {
        let service = &self.slots[index].service;
        protocol::ok(json!({
            "service": service.name(),
            "state": StateName::of(&service.state),
            "pid": service.pid(),
            "restarts": service.restarts,
        }))
    }

    fn unreachable(&self, index: usize, why: String) -> Refusal {
        let service = &self.slots[index].service;
        Refusal {
            code: ErrorCode::Unreachable,
            message: format!("{}: {why}", service.name()),
            state: Some(StateName::of(&service.state)),
        }
    }

    fn status_of(&self, index: usize, now: Instant) -> ServiceStatus {
        let slot = &self.slots[index];
        let service = &slot.service;
        let clock = self.events.clock();
        let pid = service.pid();
        let last_exit = service.last_exit.map(|(exit, at)| {
            let (code, signal) = match exit {
                Exit::Code(code) => (Some(code), None),
                Exit::Signal(signo) => (None, Some(signals::name(signo))),
            };
            LastExit {
                code,
                signal,
                at: rfc3339(clock.wall(at)),
                ago: seconds(now.saturating_duration_since(at)),
                oom_killed: slot.last_exit_oom,
            }
        });
        let next_restart = match service.state {
            State::Backoff { until } => Some(until),
            _ => None,
        };
        ServiceStatus {
            name: service.name().to_owned(),
            state: StateName::of(&service.state),
            wanted: service.wanted,
            pid,
            uptime: pid
                .and(service.started_at())
                .map(|at| seconds(now.saturating_duration_since(at))),
            restarts: service.restarts,
            last_exit,
            next_restart_in: next_restart.map(|at| seconds(at.saturating_duration_since(now))),
            next_restart_at: next_restart.map(|at| rfc3339(clock.wall(at))),
            health: slot
                .service
                .spec
                .health
                .as_ref()
                .map(|_| slot.liveness.health().to_owned()),
            last_check: slot.liveness.last.as_ref().map(|last| LastCheck {
                ok: last.ok,
                message: last.message.clone(),
                ago: seconds(now.saturating_duration_since(last.at)),
            }),
        }
    }
}
