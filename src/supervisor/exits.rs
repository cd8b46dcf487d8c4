//! Reaping: every exit, orphans included, routed to its owner (the main command, a
//! script, a service's `run`, `finish` or readiness command), with the output the service
//! left in its pipes relayed first.

use std::time::Instant;

use tracing::{debug, error, info, warn};

use super::oom;
use super::state::{Main, PROBE_INTERVAL, Slot, Stage, Supervisor};
use crate::init::cgroup::ServiceGroup;
use crate::init::reaper::{Exit, Remaining};
use crate::init::{reaper, signals};
use crate::output::events::{self, Event};
use crate::services::service::State;

impl Supervisor {
    /// Reaps everything that has exited and routes each exit to its owner.
    ///
    /// The per-child path is only `waitpid` and a push onto a reused buffer: the owners
    /// are looked up afterwards in a sorted list of the pids pidvisor started, made once
    /// per round that reaped anything, so that thousands of orphans handed over at once
    /// cost no scan of the services each, no allocation once the buffers have grown, and
    /// no formatting.
    pub(super) fn reap(&mut self, now: Instant) -> Remaining {
        let mut reaped = std::mem::take(&mut self.reaped);
        reaped.clear();
        let remaining = reaper::reap_all(|pid, exit| reaped.push((pid, exit)));
        let before = reaped.len();
        if before > 0 {
            let mut owned = std::mem::take(&mut self.owned_pids);
            self.collect_owned(&mut owned);
            reaped.retain(|&(pid, exit)| {
                let known = owned.binary_search(&pid).is_ok();
                if !known {
                    // Formats nothing unless debug logging is on.
                    debug!(pid, ?exit, "reaped orphan");
                }
                known
            });
            self.owned_pids = owned;
        }
        let orphans = (before - reaped.len()) as u64;
        self.orphans_reaped += orphans;
        if orphans > 0 {
            self.emit(Event::OrphansReaped {
                count: orphans,
                total: self.orphans_reaped,
            });
        }
        for &(pid, exit) in &reaped {
            self.on_child_exit(pid, exit, now);
        }
        self.reaped = reaped;
        self.check_lingering_groups(now);
        match remaining {
            Ok(remaining) => remaining,
            Err(err) => {
                error!("waitpid: {err}");
                Remaining::Some
            }
        }
    }

    /// Every pid pidvisor started and has not seen exit yet, sorted, into `owned`.
    fn collect_owned(&self, owned: &mut Vec<i32>) {
        owned.clear();
        if let Main::Running { pid } = self.main {
            owned.push(pid);
        }
        owned.extend(self.script_pid());
        for slot in &self.slots {
            owned.extend(
                [
                    slot.service.pid(),
                    slot.service.finish_pid(),
                    slot.probe_pid,
                    slot.check_pid(),
                ]
                .into_iter()
                .flatten(),
            );
        }
        owned.sort_unstable();
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
                || slot.check_pid() == Some(pid)
        }) else {
            return;
        };
        if self.slots[index].check_pid() == Some(pid) {
            self.on_check_exit(index, exit, now);
            return;
        }
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
            slot.last_exit_oom = oom::oom_killed(&self.oom, slot.oom_baseline, exit);
            let event = Event::Exited {
                service: slot.service.name().to_owned(),
                pid,
                code,
                signal,
                ran: events::seconds(ran.unwrap_or_default()),
                oom_killed: slot.last_exit_oom,
            };
            self.emit(event);
            if self.slots[index].last_exit_oom {
                self.on_service_oom_killed(index, now);
            }
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
            let group_empty = all_gone(slot, pid);
            slot.service.on_exit(exit, group_empty, now)
        };
        self.apply(index, actions, now);
    }

    /// Relays all the output a service has left in its pipes, unfinished line included.
    pub(super) fn drain_output(&mut self, index: usize) {
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
            let slot = &self.slots[index];
            if let State::Stopping { pid: None, .. } = slot.service.state
                && all_gone(slot, slot.service.pgid())
            {
                let actions = self.slots[index].service.on_group_empty(now);
                self.apply(index, actions, now);
            }
        }
    }
}

/// True when nothing is left of a service's run: its process group `pgid` is empty, and
/// so is its cgroup if it has one (which also holds the processes that left the group).
fn all_gone(slot: &Slot, pgid: i32) -> bool {
    group_is_empty(pgid) && !slot.cgroup.as_ref().is_some_and(ServiceGroup::is_populated)
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

pub(super) fn describe_exit(exit: Exit) -> String {
    match exit {
        Exit::Code(code) => format!("exit code {code}"),
        Exit::Signal(signo) => format!("killed by {}", signals::name(signo)),
    }
}
