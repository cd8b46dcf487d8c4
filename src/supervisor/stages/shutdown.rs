//! The way down: the first cause of shutdown (a signal, the main command's exit, a critical
//! service, a failed init script, a request) stops the main command; then each service
//! once every service that comes after it is down; and a second signal kills everything.

use std::time::Instant;

use crate::duration::deadline_after;
use crate::init::{signals, sweep};
use crate::output::events::Event;
use crate::services::service::Action;
use crate::supervisor::state::{Main, Stage, Supervisor};

impl Supervisor {
    pub(in crate::supervisor) fn begin_shutdown(&mut self, now: Instant) {
        // Whatever the cause, a drain under way is over: the shutdown is here.
        self.drain = None;
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

    pub(in crate::supervisor) fn kill_everything(&mut self) {
        sweep::signal_all(self.scope, libc::SIGKILL);
        self.stage = Stage::Killing;
    }

    /// Stops every running service that no running service comes after.
    pub(in crate::supervisor) fn stop_due_services(&mut self, now: Instant) {
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
}
