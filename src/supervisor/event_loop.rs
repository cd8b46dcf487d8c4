//! The loop itself: one `epoll_wait`, with no timeout unless a deadline is pending, then
//! each ready file descriptor to its owner and each passed deadline to its service or
//! stage; between two waits, the container moves forward ([`Supervisor::advance`]).

use std::os::fd::AsRawFd;
use std::time::Instant;

use nix::errno::Errno;
use nix::sys::epoll::{EpollEvent, EpollTimeout};
use tracing::{debug, error, warn};

use super::output;
use super::state::{
    CHECK, KIND_BITS, KIND_MASK, Main, NOTIFY, PROBE_INTERVAL, SIGNALS, STDERR, STDOUT, Stage,
    Startup, Supervisor, TCP,
};
use crate::control::server;
use crate::duration::deadline_after;
use crate::init::reaper::Remaining;
use crate::init::resident;
use crate::init::signals;
use crate::init::spawn;
use crate::output::events::Event;
use crate::services::probe::{Notification, NotifyPipe};
use crate::services::service::State;

/// How long the loop must have had nothing to do, the first time, for start-up to count
/// as over. Short, so that a container is lean soon after it starts, and a one-off: the
/// only wake-up that idleness costs, once in a container's life.
const SETTLED_MS: u16 = 100;

impl Supervisor {
    /// Runs the container's life and returns its exit code.
    pub fn run(mut self) -> i32 {
        let mut events = [EpollEvent::empty(); 32];
        // Children that exited before pidvisor took SIGCHLD (inherited from whoever exec'd
        // it) will send no SIGCHLD: reap them now rather than at the next one.
        self.reap(Instant::now());
        loop {
            let now = Instant::now();
            self.restart_pending_services(now);
            self.advance(now);
            self.check_waiters(now);
            self.tend_checks(now);
            self.tend_sd_notify();
            if matches!(self.stage, Stage::Sweep { .. } | Stage::Killing)
                && self.reap(now) == Remaining::None
            {
                self.flush_before_exit(deadline_after(now, self.grace));
                let code = self.final_exit_code();
                self.emit(Event::Exit { code });
                return code;
            }
            self.sync_output();
            let timeout = self.timeout(now);
            if timeout != EpollTimeout::ZERO {
                // Going to sleep: no slice of starts follows at once.
                spawn::release_spare_stacks();
            }
            // The first time there is nothing to wait for, wait SETTLED_MS first: if that
            // passes quietly too, start-up is over, and the next time pidvisor goes to
            // sleep, it gives start-up's pages back first (see `sleep_lighter`).
            let idle = timeout == EpollTimeout::NONE;
            let settling = idle && self.startup == Startup::Busy;
            let waited = if idle && self.startup == Startup::Settled {
                self.sleep_lighter(&mut events)
            } else if settling {
                self.epoll.wait(&mut events, EpollTimeout::from(SETTLED_MS))
            } else {
                self.epoll.wait(&mut events, timeout)
            };
            match waited {
                Ok(0) if settling => self.startup = Startup::Settled,
                Ok(ready) => {
                    for event in &events[..ready] {
                        if server::owns_token(event.data()) {
                            self.on_control_ready(event.data(), event.events());
                        } else if output::owns_token(event.data()) {
                            self.on_outlet_writable(event.data());
                        } else {
                            self.on_ready_fd(event.data());
                        }
                    }
                }
                Err(Errno::EINTR) => {}
                Err(err) => error!("epoll_wait: {err}"),
            }
            self.on_deadlines(Instant::now());
        }
    }

    /// Once, after start-up, as pidvisor goes to sleep: unmaps the binary's read-only
    /// pages, nearly all of them resident by then and most of them start-up code that will
    /// not run again, and waits for events (see [`resident::release_and_wait`]). The
    /// loop's own pages come back from the page cache as it next runs.
    fn sleep_lighter(&mut self, events: &mut [EpollEvent]) -> nix::Result<usize> {
        self.startup = Startup::PagesReleased;
        // SAFETY: nix's EpollEvent is a transparent wrapper of libc's epoll_event.
        let raw_events =
            unsafe { std::slice::from_raw_parts_mut(events.as_mut_ptr().cast(), events.len()) };
        let (released, ready) = resident::release_and_wait(self.epoll.0.as_raw_fd(), raw_events);
        debug!(
            "start-up over: {} KiB of the binary unmapped",
            released / 1024
        );
        crate::init::raw::result(ready)
            .map(|ready| ready as usize)
            .map_err(Errno::from_raw)
    }

    fn final_exit_code(&self) -> i32 {
        if let Some(code) = self.exit_code {
            return code;
        }
        match self.main {
            Main::Absent | Main::Pending | Main::Running { .. } => 0,
            Main::Exited(exit) => exit.exit_code(),
            Main::NotStarted { exit_code } => exit_code,
        }
    }

    /// The earliest pending deadline, as an epoll timeout rounded up to whole
    /// milliseconds (so that we never wake early and spin); none if nothing is pending.
    fn timeout(&self, now: Instant) -> EpollTimeout {
        if self.services_due() {
            return EpollTimeout::ZERO;
        }
        let stage = match &self.stage {
            Stage::StopMain { deadline } | Stage::Sweep { deadline } => Some(*deadline),
            Stage::Init { running, .. } | Stage::Finish { running, .. } => {
                running.as_ref().and_then(|r| r.deadline)
            }
            _ => None,
        };
        let services = self
            .slots
            .iter()
            .flat_map(|slot| [slot.service.deadline(), slot.probe_at]);
        let control = self.control_deadline();
        let main = self.main_due.filter(|_| self.main == Main::Pending);
        let Some(deadline) = [stage, self.drain_deadline(), self.checks_deadline()]
            .into_iter()
            .chain(services)
            .chain([control, main])
            .flatten()
            .min()
        else {
            return EpollTimeout::NONE;
        };
        let left = deadline.saturating_duration_since(now);
        let millis = left.as_micros().div_ceil(1000);
        EpollTimeout::try_from(millis).unwrap_or(EpollTimeout::MAX)
    }

    fn on_deadlines(&mut self, now: Instant) {
        for index in 0..self.slots.len() {
            if self.slots[index]
                .service
                .deadline()
                .is_some_and(|d| d <= now)
            {
                let actions = self.slots[index].service.on_deadline(now);
                self.apply(index, actions, now);
            }
            if self.slots[index].probe_at.is_some_and(|at| at <= now) {
                self.slots[index].probe_at = None;
                self.probe(index, now);
            }
        }
        self.on_check_deadlines(now);
        if self.drain_deadline().is_some_and(|d| d <= now) {
            self.end_drain(now);
        }
        match &mut self.stage {
            Stage::StopMain { deadline } if *deadline <= now => {
                if let Main::Running { pid } = self.main {
                    warn!("main command still running after {:?}: SIGKILL", self.grace);
                    let _ = signals::send(-pid, libc::SIGKILL);
                    let _ = signals::send(pid, libc::SIGKILL);
                }
                self.stage = Stage::StopServices;
            }
            Stage::Init { running, .. } | Stage::Finish { running, .. } => {
                if let Some(script) = running
                    && script.deadline.is_some_and(|d| d <= now)
                {
                    warn!(
                        "{} still running after {:?}: SIGKILL",
                        script.path.display(),
                        self.finish_timeout
                    );
                    let _ = signals::send(-script.pid, libc::SIGKILL);
                    script.deadline = None;
                }
            }
            Stage::Sweep { deadline } if *deadline <= now => {
                warn!(
                    "grace time of {:?} is over: sending SIGKILL to all remaining processes",
                    self.grace
                );
                self.kill_everything();
            }
            _ => {}
        }
        self.on_control_deadlines(now);
    }

    fn on_ready_fd(&mut self, token: u64) {
        if token == SIGNALS {
            self.drain_signals();
            return;
        }
        let index = (token >> KIND_BITS) as usize - 1;
        let now = Instant::now();
        if token & KIND_MASK == CHECK {
            self.on_check_ready(index, now);
            return;
        }
        let Some(slot) = self.slots.get_mut(index) else {
            return;
        };
        match token & KIND_MASK {
            STDOUT | STDERR => {
                let relay = if token & KIND_MASK == STDOUT {
                    &mut slot.stdout
                } else {
                    &mut slot.stderr
                };
                if let Some(relay) = relay
                    && let Err(err) = relay.relay(&mut self.scratch)
                {
                    warn!("{}: relaying output: {err}", slot.service.name());
                }
            }
            NOTIFY => {
                let outcome = slot.notify.as_ref().map(NotifyPipe::on_readable);
                match outcome {
                    Some(Ok(Notification::Ready)) => {
                        slot.notify = None;
                        slot.service.on_ready();
                    }
                    Some(Ok(Notification::NotYet)) => {}
                    Some(Ok(Notification::Closed)) | Some(Err(_)) | None => {
                        // Closed without a newline: readiness now depends on the timeout.
                        slot.notify = None;
                    }
                }
            }
            TCP => {
                let succeeded = slot.tcp.take().is_some_and(|probe| probe.succeeded());
                if succeeded {
                    slot.service.on_ready();
                } else if matches!(slot.service.state, State::Starting { .. }) {
                    slot.probe_at = Some(now + PROBE_INTERVAL);
                }
            }
            _ => {}
        }
        self.observe(index, now);
    }
}
