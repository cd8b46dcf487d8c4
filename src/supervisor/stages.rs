//! The container's life as a sequence of stages ([`Stage`]): [`Supervisor::advance`] takes
//! it as far as it can go now. The stages are in this folder: the one-shot scripts of the
//! init and finish stages (`one_shot`), starting the services in their order (`up`), and
//! the shutdown (`shutdown`).

use std::time::Instant;

use tracing::{debug, warn};

use super::state::{Main, Stage, Supervisor};
use crate::duration::deadline_after;
use crate::init::sweep;
use crate::services::scripts;

mod one_shot;
mod shutdown;
mod up;

pub(super) use up::START_SLICE;

impl Supervisor {
    /// Moves the container forward: next script, services whose turn has come, the main
    /// command, the next step of shutdown.
    pub(super) fn advance(&mut self, now: Instant) {
        // Each arm either waits (returns) or moves to the next stage and goes round again.
        loop {
            match &mut self.stage {
                Stage::Init { queue, running } => {
                    if running.is_some() {
                        return;
                    }
                    match queue.pop_front() {
                        Some(path) => self.start_script(path, None, now),
                        None => {
                            self.stage = Stage::Up;
                            self.main_due = self.main_wait.map(|wait| deadline_after(now, wait));
                        }
                    }
                }
                Stage::Up => {
                    self.start_due_services(now);
                    if self.main == Main::Pending && self.boot_settled() {
                        self.start_main(now);
                    } else if self.main == Main::Pending && self.main_due.is_some_and(|d| d <= now)
                    {
                        // `--main-wait 0` asks not to wait: no news, then.
                        let waited = self.main_wait.unwrap_or_default();
                        if !waited.is_zero() {
                            warn!(
                                "the services are not all ready after {waited:?} (--main-wait): \
                                 starting the main command anyway"
                            );
                        }
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
}
