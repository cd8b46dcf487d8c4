//! Turns a service's state changes into life-cycle events, and emits events.
//!
//! The state machine in [`crate::services::service`] stays pure and knows nothing of events: after
//! each of its steps the supervisor calls [`Supervisor::observe`], which compares the
//! state and restart count with what was last reported and emits what changed (ready,
//! restart scheduled with its delay, failed, finished, stopped). The events that belong
//! to an action rather than a state (started, exited, spawn failed, orphans, shutdown,
//! exit) are emitted where the supervisor carries the action out.

use std::time::{Duration, Instant};

use super::state::{Observed, Supervisor};
use tracing::warn;

use crate::init::reaper::Exit;
use crate::init::signals;
use crate::output::events::{self, Event};
use crate::services::service::State;

impl Supervisor {
    /// Records an event and sends it to every follower.
    pub(super) fn emit(&mut self, event: Event) {
        self.emit_at(event, Instant::now());
    }

    /// Records `event` as having happened at `at`, an instant taken after every event
    /// recorded before it: for an event that starts a measured span (a drain), so that
    /// the span's end is timed from the same instant.
    pub(super) fn emit_at(&mut self, event: Event, at: Instant) {
        let line = self.events.record(at, &event);
        if let Some(control) = &mut self.control {
            control.broadcast(&self.epoll, line, at);
        }
    }

    /// Reports what changed in service `index` since the last call.
    pub(super) fn observe(&mut self, index: usize, now: Instant) {
        let slot = &self.slots[index];
        let service = &slot.service;
        let before = slot.observed;
        if before.state == service.state && before.restarts == service.restarts {
            return;
        }
        let name = service.name().to_owned();
        let mut found = Vec::new();
        if service.restarts > before.restarts {
            let (delay, due) = match service.state {
                State::Backoff { until } => (until.saturating_duration_since(now), until),
                _ => (Duration::ZERO, now),
            };
            found.push(Event::RestartScheduled {
                service: name.clone(),
                restarts: service.restarts,
                delay: events::seconds(delay),
                // Not `div_f64`, which panics past Duration::MAX.
                nominal_delay: events::seconds(
                    Duration::try_from_secs_f64(delay.as_secs_f64() / self.time_scale)
                        .unwrap_or(Duration::MAX),
                ),
                due: self.events.clock().mono(due),
            });
        }
        let mut stop_reported = before.stop_reported;
        if matches!(service.state, State::Starting { .. } | State::Ready { .. }) {
            stop_reported = false;
        }
        match service.state {
            State::Ready { pid } if before.state != service.state => {
                found.push(Event::Ready {
                    service: name.clone(),
                    pid,
                });
            }
            State::Failed if before.state != State::Failed => found.push(Event::Failed {
                service: name.clone(),
                restarts: service.restarts,
                max_restarts: service.spec.max_restarts,
            }),
            State::Finished if before.state != State::Finished => {
                found.push(Event::Finished {
                    service: name.clone(),
                });
            }
            State::Down if !service.wanted && !stop_reported && before.state != State::Down => {
                stop_reported = true;
                found.push(Event::Stopped {
                    service: name.clone(),
                });
            }
            _ => {}
        }
        self.slots[index].observed = Observed {
            state: self.slots[index].service.state,
            restarts: self.slots[index].service.restarts,
            stop_reported,
        };
        for event in found {
            self.emit(event);
        }
        if before.state != self.slots[index].service.state {
            self.report_stranded_dependents(index);
        }
    }

    /// When a service has just failed, or finished after an unsuccessful run, says which
    /// of the services waiting for it (`after`) will not start because of it.
    fn report_stranded_dependents(&self, index: usize) {
        let service = &self.slots[index].service;
        if !service.is_down_for_good() {
            return;
        }
        let why = match (service.state, service.last_exit) {
            (State::Failed, _) => "failed".to_owned(),
            _ if service.ready_timed_out() => "was not ready in time".to_owned(),
            (_, Some((Exit::Code(code), _))) => format!("finished with exit code {code}"),
            (_, Some((Exit::Signal(signo), _))) => {
                format!("finished, killed by {}", signals::name(signo))
            }
            (_, None) => "finished without running".to_owned(),
        };
        let name = service.name();
        for waiting in self.slots.iter().map(|slot| &slot.service).filter(|other| {
            other.wanted && other.state == State::Down && other.spec.after.iter().any(|a| a == name)
        }) {
            warn!(
                "{}: not started: it comes after {name}, which {why}",
                waiting.name()
            );
        }
    }
}
