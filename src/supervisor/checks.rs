//! Running the checks that take time: liveness checks (`health = { command | tcp | http }`)
//! of ready services, and HTTP readiness checks (`ready = { http }`) of starting ones.
//!
//! A check is a child or a socket of the event loop, never a wait: a command check runs as
//! the service would (its user, environment, folder) in its own process group, and is
//! killed with its group at `health-timeout`; a TCP or HTTP check is a non-blocking socket
//! registered under the slot's `CHECK` token, dropped at the timeout. Each ends in one
//! result, which goes to the readiness state machine or to the service's [`Liveness`]
//! record; after too many failures in a row the service is restarted.
//!
//! Liveness checks run only while the service is ready and the container is up (not
//! draining, not stopping): the first one `health-interval` after ready, each next one
//! `health-interval` after the last one ended. An idle service with a check costs one
//! wake-up per interval; a service without one costs nothing.
//!
//! [`Liveness`]: crate::services::liveness::Liveness

use std::os::fd::AsFd;
use std::time::Instant;

use nix::sys::epoll::{EpollEvent, EpollFlags};
use tracing::{debug, warn};

use super::actions::spawn_check_command;
use super::state::{CHECK, PROBE_INTERVAL, Slot, Stage, Supervisor, token};
use crate::duration::deadline_after;
use crate::init::reaper::Exit;
use crate::init::signals;
use crate::init::spawn::Inherited;
use crate::output::events::Event;
use crate::services::http_check::{HttpCheck, HttpStep};
use crate::services::liveness::Verdict;
use crate::services::probe::TcpProbe;
use crate::services::service::State;
use crate::services::spec::Check;

/// What a check's result is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Purpose {
    Ready,
    Live,
}

/// A check under way.
pub(super) struct RunningCheck {
    purpose: Purpose,
    /// When it counts as failed; `None` once a timed-out command was killed.
    deadline: Option<Instant>,
    how: How,
}

enum How {
    /// A command; `killed` once its result is in (it timed out) and only its exit is
    /// awaited, so that it is reaped as ours.
    Command {
        pid: i32,
        killed: bool,
    },
    Tcp(TcpProbe),
    Http(HttpCheck),
}

impl Slot {
    /// The pid of a command check that has not been reaped yet.
    pub(super) fn check_pid(&self) -> Option<i32> {
        match self.check.as_ref().map(|c| &c.how) {
            Some(How::Command { pid, .. }) => Some(*pid),
            _ => None,
        }
    }
}

impl Supervisor {
    /// Schedules the first liveness check of each service that has become ready, and
    /// cancels the checks of services that are no longer where their check makes sense.
    pub(super) fn tend_checks(&mut self, now: Instant) {
        let live = matches!(self.stage, Stage::Up) && self.drain.is_none();
        for index in 0..self.slots.len() {
            let slot = &mut self.slots[index];
            let ready = slot.service.is_ready();
            let starting = matches!(slot.service.state, State::Starting { .. });
            let moot = match slot.check.as_ref().map(|c| c.purpose) {
                Some(Purpose::Live) => !(ready && live),
                Some(Purpose::Ready) => !starting,
                None => false,
            };
            if moot {
                self.cancel_check(index);
            }
            let slot = &mut self.slots[index];
            let Some(interval) = slot.service.spec.health.as_ref().map(|h| h.interval) else {
                continue;
            };
            slot.liveness.follow_run(slot.runs);
            if !(ready && live) {
                slot.check_at = None;
            } else if slot.check_at.is_none() && slot.check.is_none() {
                slot.check_at = Some(deadline_after(now, interval));
            }
        }
    }

    /// The earliest next check or check timeout.
    pub(super) fn checks_deadline(&self) -> Option<Instant> {
        self.slots
            .iter()
            .flat_map(|slot| [slot.check_at, slot.check.as_ref().and_then(|c| c.deadline)])
            .flatten()
            .min()
    }

    pub(super) fn on_check_deadlines(&mut self, now: Instant) {
        for index in 0..self.slots.len() {
            let slot = &mut self.slots[index];
            if slot.check_at.is_some_and(|at| at <= now) {
                slot.check_at = None;
                // A killed command not reaped yet: the next check once it is.
                if let (None, Some(health)) = (&slot.check, &slot.service.spec.health) {
                    let check = health.check.clone();
                    self.start_check(index, Purpose::Live, check, now);
                }
            }
            let slot = &self.slots[index];
            if slot
                .check
                .as_ref()
                .is_some_and(|c| c.deadline.is_some_and(|d| d <= now))
            {
                let timeout = slot.service.spec.check_timeout;
                self.check_result(index, false, format!("timed out after {timeout:?}"), now);
            }
        }
    }

    /// Starts a check of service `index` (its result comes later).
    pub(super) fn start_check(
        &mut self,
        index: usize,
        purpose: Purpose,
        check: Check,
        now: Instant,
    ) {
        let slot = &mut self.slots[index];
        let deadline = Some(deadline_after(now, slot.service.spec.check_timeout));
        let started = match check {
            Check::Command(command) => {
                let (spec, reset) = (&slot.service.spec, self.signals.child_reset());
                let environment = self.environment.get_or_init(Inherited::capture);
                spawn_check_command(spec, &command, environment, reset)
                    .map(|pid| How::Command { pid, killed: false })
                    .map_err(|err| err.message)
            }
            Check::Tcp(addr) => TcpProbe::connect(addr)
                .map(How::Tcp)
                .map_err(|err| format!("connecting to {addr}: {err}")),
            Check::Http(target) => HttpCheck::start(&target)
                .map(How::Http)
                .map_err(|err| format!("connecting to {}: {err}", target.addr)),
        };
        let how = match started {
            Ok(how) => how,
            Err(message) => return self.record_result(index, purpose, false, message, now),
        };
        let socket = match &how {
            How::Tcp(probe) => Some(probe.as_fd()),
            How::Http(check) => Some(check.as_fd()),
            How::Command { .. } => None,
        };
        let registered = socket.map(|fd| {
            self.epoll.add(
                fd,
                EpollEvent::new(EpollFlags::EPOLLOUT, token(index, CHECK)),
            )
        });
        slot.check = Some(RunningCheck {
            purpose,
            deadline,
            how,
        });
        if let Some(Err(err)) = registered {
            self.check_result(index, false, format!("cannot watch its socket: {err}"), now);
        }
    }

    /// A check's socket is ready.
    pub(super) fn on_check_ready(&mut self, index: usize, now: Instant) {
        let Some(check) = self.slots.get_mut(index).and_then(|s| s.check.as_mut()) else {
            return;
        };
        let outcome = match &mut check.how {
            How::Tcp(probe) => match probe.succeeded() {
                true => Ok("connected".to_owned()),
                false => Err("connection refused or failed".to_owned()),
            },
            How::Http(http) => match http.advance() {
                HttpStep::Done(outcome) => outcome,
                step => {
                    let flags = match step {
                        HttpStep::Readable => EpollFlags::EPOLLIN,
                        _ => EpollFlags::EPOLLOUT,
                    };
                    let mut event = EpollEvent::new(flags, token(index, CHECK));
                    if let Err(err) = self.epoll.modify(http.as_fd(), &mut event) {
                        self.check_result(index, false, format!("epoll: {err}"), now);
                    }
                    return;
                }
            },
            How::Command { .. } => return,
        };
        match outcome {
            Ok(message) => self.check_result(index, true, message, now),
            Err(message) => self.check_result(index, false, message, now),
        }
    }

    /// A command check exited.
    pub(super) fn on_check_exit(&mut self, index: usize, exit: Exit, now: Instant) {
        let Some(check) = self.slots[index].check.take() else {
            return;
        };
        if let How::Command { killed: true, .. } = check.how {
            // Timed out or cancelled: its result is in already.
            return;
        }
        let message = super::exits::describe_exit(exit);
        self.record_result(index, check.purpose, exit == Exit::Code(0), message, now);
    }

    /// The check under way of service `index` ended.
    fn check_result(&mut self, index: usize, ok: bool, message: String, now: Instant) {
        let Some(purpose) = self.slots[index].check.as_ref().map(|c| c.purpose) else {
            return;
        };
        self.cancel_check(index);
        self.record_result(index, purpose, ok, message, now);
    }

    /// A check's result goes to readiness, or to the liveness record and what follows.
    fn record_result(
        &mut self,
        index: usize,
        purpose: Purpose,
        ok: bool,
        message: String,
        now: Instant,
    ) {
        let slot = &mut self.slots[index];
        let name = slot.service.name().to_owned();
        if purpose == Purpose::Ready {
            if ok {
                slot.service.on_ready();
            } else if matches!(slot.service.state, State::Starting { .. }) {
                debug!("{name}: not ready yet: {message}");
                slot.probe_at = Some(now + PROBE_INTERVAL);
            }
            self.observe(index, now);
            return;
        }
        let Some(health) = slot.service.spec.health.clone() else {
            return;
        };
        if !ok {
            warn!(
                "{name}: health check failed ({} of {} in a row): {message}",
                slot.liveness.failures_in_a_row() + 1,
                health.failures
            );
        }
        let verdict = slot
            .liveness
            .record(ok, message.clone(), now, health.failures);
        slot.check_at = Some(deadline_after(now, health.interval));
        match verdict {
            Verdict::Unchanged => {}
            Verdict::Healthy => self.emit(Event::Healthy { service: name }),
            Verdict::Unhealthy => {
                self.emit(Event::Unhealthy {
                    service: name,
                    message,
                    failures: health.failures,
                });
                let actions = self.slots[index].service.on_unhealthy(now);
                self.apply(index, actions, now);
            }
        }
    }

    /// Ends the check under way, if any: its socket closed, its command killed (and still
    /// awaited, so that its exit is reaped as ours).
    fn cancel_check(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        let Some(check) = slot.check.take() else {
            return;
        };
        match check.how {
            How::Command { pid, killed } => {
                if !killed {
                    let _ = signals::send(-pid, libc::SIGKILL);
                }
                slot.check = Some(RunningCheck {
                    purpose: check.purpose,
                    deadline: None,
                    how: How::Command { pid, killed: true },
                });
            }
            How::Tcp(probe) => {
                let _ = self.epoll.delete(probe.as_fd());
            }
            How::Http(http) => {
                let _ = self.epoll.delete(http.as_fd());
            }
        }
    }
}
