//! Drain before stop (`--shutdown-delay`): on the first TERM, INT or QUIT, pidvisor first
//! reports unhealthy for the delay (`health` and `ping` say `draining`, a `draining` event
//! is written), while everything keeps running, so that a load balancer or Kubernetes'
//! endpoints stop sending requests before anything stops serving. Then the signal does
//! what it does without a delay. A second signal, or the main command's exit, ends the
//! wait at once.

use std::time::{Duration, Instant};

use tracing::info;

use super::state::Supervisor;
use crate::duration::deadline_after;
use crate::init::signals;
use crate::output::events::{self, Event};

/// A drain under way: the shutdown starts at `until`, as `signo` asked.
#[derive(Debug, Clone, Copy)]
pub(super) struct Drain {
    pub(super) until: Instant,
    pub(super) signo: i32,
}

impl Supervisor {
    /// The first shutdown signal with a delay: starts draining. False when there is no
    /// delay (the signal shuts down at once).
    pub(super) fn begin_drain(&mut self, signo: i32) -> bool {
        if self.shutdown_delay == Duration::ZERO {
            return false;
        }
        info!(
            "{}: draining for {:?} before shutting down (a second signal skips the wait)",
            signals::name(signo),
            self.shutdown_delay
        );
        // The event is stamped with the very instant the deadline counts from (taken after
        // the log line, so after every event before it), so that the two agree exactly.
        let start = Instant::now();
        self.drain = Some(Drain {
            until: deadline_after(start, self.shutdown_delay),
            signo,
        });
        self.emit_at(
            Event::Draining {
                signal: signals::name(signo),
                delay: events::seconds(self.shutdown_delay),
            },
            start,
        );
        true
    }

    /// Ends the drain (its time is up, or a second signal came): the shutdown begins as
    /// the first signal asked.
    pub(super) fn end_drain(&mut self, now: Instant) {
        if let Some(drain) = self.drain.take() {
            info!("{}: shutting down", signals::name(drain.signo));
            self.shut_down_on_signal(drain.signo, now);
        }
    }

    /// The drain's deadline, if one is under way.
    pub(super) fn drain_deadline(&self) -> Option<Instant> {
        self.drain.map(|drain| drain.until)
    }
}
