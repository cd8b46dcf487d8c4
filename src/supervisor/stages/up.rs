//! The `Up` stage: each wanted service starts as soon as the services it comes `after` are
//! ready, and the boot is settled once every service wanted at boot is ready, has stopped
//! for good, or waits for one that will not come up by itself.

use std::time::Instant;

use crate::services::service::{Action, State};
use crate::supervisor::state::{Stage, Supervisor};

/// The most services started in one pass of the loop: a boot of a thousand services takes
/// seconds of `fork` and `exec`, and between two slices pidvisor serves signals, exits and
/// `pidvisorctl` (the loop does not sleep while a slice is left).
pub(in crate::supervisor) const START_SLICE: usize = 32;

impl Supervisor {
    /// True when every service wanted at boot is ready, has stopped for good, or cannot
    /// start because it waits for one that will not come up by itself.
    pub(in crate::supervisor) fn boot_settled(&self) -> bool {
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
                // A service left out at start (out of descriptors) never comes up.
                self.by_name.get(name).is_none_or(|&dep| {
                    let dependency = &self.slots[dep].service;
                    (!dependency.wanted && dependency.is_stopped())
                        || dependency.is_down_for_good()
                        || self.blocked_for_good(dep)
                })
            })
    }

    /// Starts the wanted, down services whose `after` services are all ready, at most
    /// [`START_SLICE`] of them.
    pub(in crate::supervisor) fn start_due_services(&mut self, now: Instant) {
        let due: Vec<usize> = (0..self.slots.len())
            .filter(|&index| self.due_to_start(index))
            .take(START_SLICE)
            .collect();
        // Every `run` of the slice is forked before the first `exec` is waited for, so that
        // the `exec`s run side by side; the outcomes are then reported in order, as if
        // each had been started alone.
        let mut starting = Vec::new();
        for index in due {
            let actions = self.slots[index].service.start();
            if actions == [Action::Spawn] {
                self.observe(index, now);
                starting.push((index, self.start_service(index)));
            } else {
                self.apply(index, actions, now);
            }
        }
        for (index, started) in starting {
            self.spawned(index, started, now);
        }
    }

    /// Whether services wait for their slice: the loop then polls instead of sleeping.
    pub(in crate::supervisor) fn services_due(&self) -> bool {
        matches!(self.stage, Stage::Up)
            && (0..self.slots.len()).any(|index| self.due_to_start(index))
    }

    fn due_to_start(&self, index: usize) -> bool {
        let service = &self.slots[index].service;
        service.wanted && service.state == State::Down && self.dependencies_ready(index)
    }

    pub(in crate::supervisor) fn dependencies_ready(&self, index: usize) -> bool {
        self.slots[index].service.spec.after.iter().all(|name| {
            self.by_name
                .get(name)
                .is_some_and(|&other| self.slots[other].service.is_up_for_dependents())
        })
    }
}
