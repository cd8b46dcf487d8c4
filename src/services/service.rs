//! The life cycle of one service, as a pure state machine: it decides, the supervisor acts.
//!
//! Every method takes the current time and returns the [`Action`]s to carry out; nothing
//! here forks, signals or sleeps, so the whole table of states and events is unit-tested
//! without processes. Each timed step (restart pause, stop escalation, readiness and finish
//! timeouts) is a deadline stored in the state; the supervisor's loop calls
//! [`Service::on_deadline`] when the earliest one passes. What follows the end of a run
//! (the restart policy, backoff and giving up) is decided in `restart`.
//!
//! ```text
//!            start                spawned           ready
//!   Down ───────────▶ (spawn) ──────────▶ Starting ───────▶ Ready
//!    ▲                                     │  exit            │ exit
//!    │ stop                                ▼                  ▼
//!    │                         Finishing (finish script, if any)
//!    │                                     │
//!    │          ┌──────────────────────────┼─────────────────────┐
//!    │          ▼ quick crash              ▼ stable run          ▼ policy says no / gave up
//!    └──── Backoff ──(deadline)──▶ spawn   spawn at once      Finished / Failed
//!
//!   Starting/Ready ──stop, or exit leaving its group──▶ Stopping
//!       ──(exit, group empty | deadline: SIGKILL)──▶ Down, or Finishing etc. if still wanted
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use tracing::{error, info, warn};

use crate::duration::deadline_after;
use crate::init::reaper::Exit;
use crate::init::signals;
use crate::services::spec::{Readiness, RestartPolicy, ServiceSpec};

mod restart;
mod unhealthy;

/// The exit code that a `finish` script uses to say "do not restart" (s6's rule).
pub const FINISH_NO_RESTART: i32 = 125;

/// The shortest wait before trying again to start a `run` that could not be started at
/// all (missing working-dir, exec failure): with `restart-delay = 0` an at-once retry
/// would fail again at once, in a loop that never returns to the event loop.
pub const SPAWN_RETRY_MIN: Duration = Duration::from_millis(100);

/// Where a service is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not running and not scheduled to run.
    Down,
    /// Running, not yet ready; stopped and restarted if not ready by `ready_deadline`.
    Starting { pid: i32, ready_deadline: Instant },
    /// Running and ready.
    Ready { pid: i32 },
    /// The stop signal was sent; SIGKILL goes to the whole group at `deadline` (`None`
    /// once it has gone). `pid` is `None` once `run` has exited but others in its process
    /// group remain.
    Stopping {
        pid: Option<i32>,
        deadline: Option<Instant>,
    },
    /// The `finish` script runs (killed at `deadline`).
    Finishing { pid: i32, deadline: Instant },
    /// Waiting to restart after a quick crash.
    Backoff { until: Instant },
    /// Gave up after too many restarts; stays down until started by hand.
    Failed,
    /// Exited and its restart policy says not to restart.
    Finished,
}

/// What the supervisor must do for a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Start `run`, then report with [`Service::on_spawned`] or [`Service::on_spawn_failed`].
    Spawn,
    /// Send this signal, then SIGCONT, to the process group `pgid`.
    Signal { pgid: i32, signo: i32 },
    /// SIGKILL the process group `pgid`.
    Kill { pgid: i32 },
    /// Start `finish` with the exit's arguments, then report with
    /// [`Service::on_finish_spawned`] (or [`Service::on_finish_exit`] if it cannot start).
    RunFinish { exit: Exit },
    /// Begin checking readiness (TCP or command probes).
    ProbeReadiness,
    /// The service is critical and stopped for good: shut the container down.
    ShutDownContainer { exit_code: i32 },
}

/// One supervised service: its spec, its state and its restart history.
#[derive(Debug)]
pub struct Service {
    pub spec: ServiceSpec,
    pub state: State,
    /// Whether it should be running: false when stopped by hand, by a `down` file, or
    /// during shutdown. The restart policy only applies while it is wanted.
    pub wanted: bool,
    /// Restarts so far (for status output).
    pub restarts: u32,
    pub last_exit: Option<(Exit, Instant)>,
    /// When the current run started.
    started_at: Option<Instant>,
    /// The process group of the current or last run (its leader's pid).
    pgid: i32,
    /// Times of the recent restarts, at most `max_restarts` of them.
    recent_restarts: VecDeque<Instant>,
    /// Quick crashes in a row: the exponent of the backoff.
    quick_crashes: u32,
    /// The exit of `run` that the current `Finishing`/`Stopping` state is about.
    pending_exit: Option<Exit>,
    /// The current or last run was stopped for not being ready in time: however it
    /// exited, it did not complete.
    ready_timed_out: bool,
    /// The current or last run was stopped for failing its liveness checks: its end is a
    /// crash, whatever its exit.
    stopped_unhealthy: bool,
}

impl Service {
    pub fn new(spec: ServiceSpec) -> Service {
        let wanted = !spec.start_down;
        let capacity = spec.max_restarts as usize;
        Service {
            spec,
            state: State::Down,
            wanted,
            restarts: 0,
            last_exit: None,
            started_at: None,
            pgid: 0,
            recent_restarts: VecDeque::with_capacity(capacity),
            quick_crashes: 0,
            pending_exit: None,
            ready_timed_out: false,
            stopped_unhealthy: false,
        }
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The pid of `run`, while it runs.
    pub fn pid(&self) -> Option<i32> {
        match self.state {
            State::Starting { pid, .. } | State::Ready { pid } => Some(pid),
            State::Stopping { pid, .. } => pid,
            _ => None,
        }
    }

    /// When the current run started (for uptimes), if one runs.
    pub fn started_at(&self) -> Option<Instant> {
        self.started_at
    }

    /// The process group of the current or last run.
    pub fn pgid(&self) -> i32 {
        self.pgid
    }

    /// The pid of `finish`, while it runs.
    pub fn finish_pid(&self) -> Option<i32> {
        match self.state {
            State::Finishing { pid, .. } => Some(pid),
            _ => None,
        }
    }

    pub fn is_ready(&self) -> bool {
        matches!(self.state, State::Ready { .. })
    }

    /// Finished for good after a successful run: a one-shot that has done its job, which
    /// counts as up for the services that come after it (s6-rc's oneshot). A run stopped
    /// for not being ready in time did not complete, whatever its exit.
    pub fn completed(&self) -> bool {
        self.state == State::Finished
            && !self.ready_timed_out
            && self
                .last_exit
                .is_some_and(|(exit, _)| self.is_success(exit))
    }

    /// Whether the current or last run was stopped for not being ready in time.
    pub fn ready_timed_out(&self) -> bool {
        self.ready_timed_out
    }

    /// Up, as far as the services that come after it are concerned: ready, or completed.
    /// A one-shot is up only once completed: being "ready" at start means nothing for it.
    pub fn is_up_for_dependents(&self) -> bool {
        if self.is_one_shot() {
            return self.completed();
        }
        self.is_ready() || self.completed()
    }

    /// A service that is never restarted and has no readiness check: its work is done
    /// when it exits successfully (s6-rc's oneshot), not when it starts.
    fn is_one_shot(&self) -> bool {
        self.spec.restart == RestartPolicy::Never && self.spec.ready == Readiness::Started
    }

    /// Will not come up by itself: failed, or finished after an unsuccessful run.
    pub fn is_down_for_good(&self) -> bool {
        self.state == State::Failed || (self.state == State::Finished && !self.completed())
    }

    /// Down for good or for now, with nothing of it running: what shutdown waits for.
    pub fn is_stopped(&self) -> bool {
        matches!(
            self.state,
            State::Down | State::Failed | State::Finished | State::Backoff { .. }
        )
    }

    /// The next moment this service needs attention, if any.
    pub fn deadline(&self) -> Option<Instant> {
        match self.state {
            State::Starting { ready_deadline, .. } => Some(ready_deadline),
            State::Stopping { deadline, .. } => deadline,
            State::Finishing { deadline, .. } => Some(deadline),
            State::Backoff { until } => Some(until),
            _ => None,
        }
    }

    /// Wants it up. Starts it if it is not running (an explicit start also forgives past
    /// failures); the supervisor calls this only once its `after` services are ready.
    pub fn start(&mut self) -> Vec<Action> {
        self.wanted = true;
        match self.state {
            State::Down | State::Failed | State::Finished | State::Backoff { .. } => {
                if self.state == State::Failed {
                    self.recent_restarts.clear();
                    self.quick_crashes = 0;
                }
                self.state = State::Down;
                vec![Action::Spawn]
            }
            _ => Vec::new(),
        }
    }

    /// Wants it down: sends the stop signal, or cancels a pending restart.
    /// Stopping: the stop signal to the process group `pgid`, SIGKILL after
    /// `stop-timeout`. `pid` is the leader still to be reaped, if it has not exited yet.
    fn signal_stop(&mut self, pid: Option<i32>, pgid: i32, now: Instant) -> Vec<Action> {
        self.state = State::Stopping {
            pid,
            deadline: Some(deadline_after(now, self.spec.stop_timeout)),
        };
        vec![Action::Signal {
            pgid,
            signo: self.spec.stop_signal,
        }]
    }

    pub fn stop(&mut self, now: Instant) -> Vec<Action> {
        self.wanted = false;
        match self.state {
            State::Starting { pid, .. } | State::Ready { pid } => {
                self.signal_stop(Some(pid), pid, now)
            }
            State::Backoff { .. } => {
                self.state = State::Down;
                Vec::new()
            }
            // Stopping already, or a finish script runs: its end takes the service down,
            // since it is no longer wanted.
            _ => Vec::new(),
        }
    }

    pub fn on_spawned(&mut self, pid: i32, now: Instant) -> Vec<Action> {
        self.started_at = Some(now);
        self.ready_timed_out = false;
        self.stopped_unhealthy = false;
        self.pgid = pid;
        match self.spec.ready {
            Readiness::Started => {
                self.state = State::Ready { pid };
                Vec::new()
            }
            Readiness::NotifyFd(_) => {
                self.state = State::Starting {
                    pid,
                    ready_deadline: deadline_after(now, self.spec.ready_timeout),
                };
                Vec::new()
            }
            Readiness::Tcp(_) | Readiness::Command(_) | Readiness::Http(_) => {
                self.state = State::Starting {
                    pid,
                    ready_deadline: deadline_after(now, self.spec.ready_timeout),
                };
                vec![Action::ProbeReadiness]
            }
        }
    }

    /// `run` could not be executed: handled like an exit with the shell's code (126/127),
    /// so that the restart policy and its backoff apply.
    pub fn on_spawn_failed(&mut self, exit_code: i32, now: Instant) -> Vec<Action> {
        self.started_at = Some(now);
        self.after_run(Exit::Code(exit_code), None, now, SPAWN_RETRY_MIN)
    }

    pub fn on_ready(&mut self) {
        if let State::Starting { pid, .. } = self.state {
            info!("{}: ready", self.name());
            self.state = State::Ready { pid };
        }
    }

    /// `run` exited. `group_empty` says whether any process of its group is left.
    pub fn on_exit(&mut self, exit: Exit, group_empty: bool, now: Instant) -> Vec<Action> {
        self.last_exit = Some((exit, now));
        match self.state {
            State::Stopping { deadline, .. } if !group_empty => {
                // The leader is gone but its group lingers: wait for it, or for SIGKILL.
                self.pending_exit = Some(exit);
                self.state = State::Stopping {
                    pid: None,
                    deadline,
                };
                Vec::new()
            }
            State::Starting { pid, .. } | State::Ready { pid } if !group_empty => {
                // Stopped like any service (SIGKILL to the group after stop-timeout), and
                // only then finished or restarted: nothing of this run is left behind.
                // Often the rest is only a child still dying of the same signal (a second
                // CPU has not run it yet), so this is news, not a warning; one that
                // outlives the stop-timeout gets the warning with its SIGKILL.
                info!(
                    "{}: run exited before the rest of its process group; sending the rest {}",
                    self.name(),
                    signals::name(self.spec.stop_signal)
                );
                self.pending_exit = Some(exit);
                self.signal_stop(None, pid, now)
            }
            _ => self.finish_or_decide(exit, now),
        }
    }

    /// The last process of a stopping service's group is gone.
    pub fn on_group_empty(&mut self, now: Instant) -> Vec<Action> {
        if let State::Stopping { pid: None, .. } = self.state {
            let exit = self
                .pending_exit
                .take()
                .unwrap_or(Exit::Signal(libc::SIGKILL));
            return self.finish_or_decide(exit, now);
        }
        Vec::new()
    }

    pub fn on_finish_spawned(&mut self, pid: i32, now: Instant) {
        self.state = State::Finishing {
            pid,
            deadline: deadline_after(now, self.spec.finish_timeout),
        };
    }

    /// `finish` exited (or could not start: `code` is then its 126/127).
    pub fn on_finish_exit(&mut self, code: Option<i32>, now: Instant) -> Vec<Action> {
        let exit = self.pending_exit.take().unwrap_or(Exit::Code(0));
        self.after_run(exit, code, now, Duration::ZERO)
    }

    /// The state's deadline has passed.
    pub fn on_deadline(&mut self, now: Instant) -> Vec<Action> {
        match self.state {
            State::Starting {
                pid,
                ready_deadline,
            } if now >= ready_deadline => {
                error!(
                    "{}: not ready within {:?}: stopping it",
                    self.name(),
                    self.spec.ready_timeout
                );
                self.ready_timed_out = true;
                self.signal_stop(Some(pid), pid, now)
            }
            State::Stopping {
                pid,
                deadline: Some(deadline),
            } if now >= deadline => {
                warn!(
                    "{}: still running {:?} after {}: sending SIGKILL to its process group",
                    self.name(),
                    self.spec.stop_timeout,
                    signals::name(self.spec.stop_signal)
                );
                let pgid = self.pgid;
                self.state = State::Stopping {
                    pid,
                    deadline: None,
                };
                match pid {
                    // Wait for the leader's exit, which the SIGKILL guarantees.
                    Some(_) => vec![Action::Kill { pgid }],
                    None => {
                        let mut actions = vec![Action::Kill { pgid }];
                        let exit = self
                            .pending_exit
                            .take()
                            .unwrap_or(Exit::Signal(libc::SIGKILL));
                        actions.extend(self.finish_or_decide(exit, now));
                        actions
                    }
                }
            }
            State::Finishing { pid, deadline } if now >= deadline => {
                warn!(
                    "{}: finish still running after {:?}: killing it",
                    self.name(),
                    self.spec.finish_timeout
                );
                vec![Action::Kill { pgid: pid }]
            }
            State::Backoff { until } if now >= until => {
                self.state = State::Down;
                vec![Action::Spawn]
            }
            _ => Vec::new(),
        }
    }

    /// After `run` is gone: run `finish` if there is one, else decide at once.
    fn finish_or_decide(&mut self, exit: Exit, now: Instant) -> Vec<Action> {
        if self.spec.finish.is_some() {
            self.pending_exit = Some(exit);
            // Until the supervisor reports the finish pid, the state is Down (nothing runs).
            self.state = State::Down;
            return vec![Action::RunFinish { exit }];
        }
        self.after_run(exit, None, now, Duration::ZERO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::spec::Backoff;
    use std::path::PathBuf;

    fn spec() -> ServiceSpec {
        ServiceSpec::for_tests()
    }

    /// A service that was started at `t0` and runs as pid 100.
    fn running(spec: ServiceSpec, t0: Instant) -> Service {
        let mut service = Service::new(spec);
        assert_eq!(service.start(), vec![Action::Spawn]);
        service.on_spawned(100, t0);
        service
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    /// Timeouts and delays come from service.toml and may be as long as a `Duration` can
    /// be: every deadline saturates instead of panicking (`Instant + Duration` overflow).
    #[test]
    fn huge_timeouts_and_delays_never_overflow_a_deadline() {
        let huge = Duration::from_secs(u64::MAX / 2);
        let t0 = Instant::now();
        let huge_spec = || ServiceSpec {
            finish_timeout: huge,
            stop_timeout: huge,
            ready_timeout: huge,
            backoff: Backoff {
                initial: huge,
                max: Duration::MAX,
                factor: 2.0,
                stable_after: Duration::MAX,
                jitter: false,
            },
            ..spec()
        };
        // stop-timeout, through a stop request.
        let mut service = running(huge_spec(), t0);
        service.stop(t0);
        assert!(service.deadline().is_some_and(|d| d > t0));
        // ready-timeout, then stop-timeout after it.
        let mut service = running(
            ServiceSpec {
                ready: Readiness::NotifyFd(3),
                ..huge_spec()
            },
            t0,
        );
        assert!(service.deadline().is_some_and(|d| d > t0));
        assert!(service.on_deadline(t0).is_empty(), "not yet");
        // A group left behind: stopped with the stop-timeout.
        let mut service = running(huge_spec(), t0);
        service.on_exit(Exit::Code(1), false, t0);
        assert!(service.deadline().is_some_and(|d| d > t0));
        // finish-timeout.
        let mut service = running(
            ServiceSpec {
                finish: Some(PathBuf::from("/services/web/finish")),
                ..huge_spec()
            },
            t0,
        );
        service.on_exit(Exit::Code(1), true, t0);
        service.on_finish_spawned(200, t0);
        assert!(service.deadline().is_some_and(|d| d > t0));
        // The restart delay, with and without jitter, however many quick crashes.
        for jitter in [false, true] {
            let mut spec = huge_spec();
            spec.backoff.jitter = jitter;
            let mut service = running(spec, t0);
            for _ in 0..70 {
                service.on_exit(Exit::Code(1), true, t0);
                assert!(service.deadline().is_some_and(|d| d > t0));
                service.start();
                service.on_spawned(100, t0);
            }
        }
    }

    #[test]
    fn a_service_without_readiness_is_ready_once_started() {
        let t0 = Instant::now();
        let service = running(spec(), t0);
        assert_eq!(service.state, State::Ready { pid: 100 });
        assert_eq!(service.deadline(), None);
    }

    #[test]
    fn a_down_file_keeps_it_unwanted_until_started() {
        let service = Service::new(ServiceSpec {
            start_down: true,
            ..spec()
        });
        assert!(!service.wanted);
        assert_eq!(service.state, State::Down);
    }

    #[test]
    fn a_crash_after_a_stable_run_restarts_at_once() {
        let t0 = Instant::now();
        let mut service = running(spec(), t0);
        let actions = service.on_exit(Exit::Code(1), true, t0 + secs(60.0));
        assert_eq!(actions, vec![Action::Spawn]);
        assert_eq!(service.restarts, 1);
    }

    #[test]
    fn quick_crashes_back_off_exponentially_up_to_the_cap_and_reset_after_a_stable_run() {
        let mut now = Instant::now();
        let mut service = running(spec(), now);
        let mut delays = Vec::new();
        for _ in 0..6 {
            now += secs(0.01);
            assert!(service.on_exit(Exit::Code(1), true, now).is_empty());
            let State::Backoff { until } = service.state else {
                panic!("expected backoff, got {:?}", service.state);
            };
            delays.push(until - now);
            assert_eq!(service.deadline(), Some(until));
            assert_eq!(service.on_deadline(until), vec![Action::Spawn]);
            now = until;
            service.on_spawned(100, now);
        }
        let expected: Vec<Duration> = [0.1, 0.2, 0.4, 0.8, 1.0, 1.0].map(secs).to_vec();
        assert_eq!(delays, expected);
        // A stable run resets the exponent: the next quick crash waits the initial delay.
        now += secs(11.0);
        assert_eq!(
            service.on_exit(Exit::Code(1), true, now),
            vec![Action::Spawn]
        );
        service.on_spawned(100, now);
        now += secs(0.01);
        service.on_exit(Exit::Code(1), true, now);
        assert_eq!(
            service.state,
            State::Backoff {
                until: now + secs(0.1)
            }
        );
    }

    #[test]
    fn on_failure_restarts_failures_only() {
        let t0 = Instant::now();
        let on_failure = || ServiceSpec {
            restart: RestartPolicy::OnFailure,
            success_exit_codes: vec![0, 3],
            ..spec()
        };
        let mut service = running(on_failure(), t0);
        assert!(
            service
                .on_exit(Exit::Code(3), true, t0 + secs(20.0))
                .is_empty()
        );
        assert_eq!(service.state, State::Finished);

        let mut service = running(on_failure(), t0);
        let actions = service.on_exit(Exit::Signal(libc::SIGKILL), true, t0 + secs(20.0));
        assert_eq!(actions, vec![Action::Spawn]);
    }

    #[test]
    fn never_finishes_and_a_critical_one_takes_the_container_down() {
        let t0 = Instant::now();
        let never = ServiceSpec {
            restart: RestartPolicy::Never,
            critical: true,
            ..spec()
        };
        let mut service = running(never.clone(), t0);
        let actions = service.on_exit(Exit::Code(4), true, t0);
        assert_eq!(actions, vec![Action::ShutDownContainer { exit_code: 4 }]);
        assert_eq!(service.state, State::Finished);

        // Even a clean exit ends the container with a failure: it was meant to run on.
        let mut service = running(never, t0);
        let actions = service.on_exit(Exit::Code(0), true, t0);
        assert_eq!(actions, vec![Action::ShutDownContainer { exit_code: 1 }]);
    }

    #[test]
    fn a_one_shot_that_exits_successfully_counts_as_up_and_one_that_fails_as_down_for_good() {
        let t0 = Instant::now();
        let one_shot = ServiceSpec {
            restart: RestartPolicy::Never,
            ..spec()
        };
        let mut service = running(one_shot.clone(), t0);
        assert!(
            service.is_ready() && !service.is_up_for_dependents(),
            "running, a one-shot is not up yet for the services after it"
        );
        service.on_exit(Exit::Code(0), true, t0);
        assert!(service.completed() && service.is_up_for_dependents());
        assert!(!service.is_down_for_good());

        for exit in [Exit::Code(1), Exit::Signal(libc::SIGKILL)] {
            let mut service = running(one_shot.clone(), t0);
            service.on_exit(exit, true, t0);
            assert!(!service.is_up_for_dependents(), "{exit:?}");
            assert!(service.is_down_for_good(), "{exit:?}");
        }
    }

    #[test]
    fn gives_up_after_max_restarts_within_the_window() {
        let mut now = Instant::now();
        let mut service = running(
            ServiceSpec {
                max_restarts: 3,
                restart_window: secs(60.0),
                critical: true,
                ..spec()
            },
            now,
        );
        for _ in 0..3 {
            now += secs(0.5);
            service.on_exit(Exit::Signal(libc::SIGSEGV), true, now);
            let until = service.deadline().expect("backoff deadline");
            assert_eq!(service.on_deadline(until), vec![Action::Spawn]);
            service.on_spawned(100, until);
            now = until;
        }
        let actions = service.on_exit(Exit::Signal(libc::SIGSEGV), true, now);
        assert_eq!(service.state, State::Failed);
        assert_eq!(actions, vec![Action::ShutDownContainer { exit_code: 139 }]);
        assert_eq!(service.restarts, 3);
        // Starting it by hand forgives the past failures.
        assert_eq!(service.start(), vec![Action::Spawn]);
        service.on_spawned(101, now);
        service.on_exit(Exit::Code(1), true, now + secs(0.1));
        assert!(matches!(service.state, State::Backoff { .. }));
    }

    #[test]
    fn restarts_outside_the_window_are_forgotten() {
        let mut now = Instant::now();
        let mut service = running(
            ServiceSpec {
                max_restarts: 2,
                restart_window: secs(30.0),
                ..spec()
            },
            now,
        );
        for _ in 0..5 {
            now += secs(20.0);
            assert_eq!(
                service.on_exit(Exit::Code(1), true, now),
                vec![Action::Spawn]
            );
            service.on_spawned(100, now);
        }
        assert_eq!(service.state, State::Ready { pid: 100 });
    }

    #[test]
    fn stop_sends_the_stop_signal_and_the_exit_takes_it_down_without_restart() {
        let t0 = Instant::now();
        let mut service = running(
            ServiceSpec {
                stop_signal: libc::SIGQUIT,
                ..spec()
            },
            t0,
        );
        let actions = service.stop(t0);
        assert_eq!(
            actions,
            vec![Action::Signal {
                pgid: 100,
                signo: libc::SIGQUIT
            }]
        );
        assert_eq!(service.deadline(), Some(t0 + secs(5.0)));
        assert!(
            service
                .on_exit(Exit::Signal(libc::SIGQUIT), true, t0)
                .is_empty()
        );
        assert_eq!(service.state, State::Down);
        assert!(service.is_stopped());
    }

    #[test]
    fn a_stubborn_service_gets_sigkill_to_its_group_at_the_stop_timeout() {
        let t0 = Instant::now();
        let mut service = running(spec(), t0);
        service.stop(t0);
        assert!(service.on_deadline(t0 + secs(1.0)).is_empty(), "not yet");
        let actions = service.on_deadline(t0 + secs(5.0));
        assert_eq!(actions, vec![Action::Kill { pgid: 100 }]);
        assert_eq!(service.deadline(), None);
        assert!(
            service
                .on_exit(Exit::Signal(libc::SIGKILL), true, t0)
                .is_empty()
        );
        assert_eq!(service.state, State::Down);
    }

    #[test]
    fn a_lingering_group_after_the_leader_exits_is_killed_at_the_timeout() {
        let t0 = Instant::now();
        let mut service = running(spec(), t0);
        service.stop(t0);
        assert!(
            service
                .on_exit(Exit::Code(0), false, t0 + secs(1.0))
                .is_empty()
        );
        assert_eq!(
            service.state,
            State::Stopping {
                pid: None,
                deadline: Some(t0 + secs(5.0))
            }
        );
        assert!(!service.is_stopped());
        let actions = service.on_deadline(t0 + secs(5.0));
        assert_eq!(actions, vec![Action::Kill { pgid: 100 }]);
        assert_eq!(service.state, State::Down);
    }

    #[test]
    fn a_lingering_group_that_exits_on_its_own_ends_the_stop_early() {
        let t0 = Instant::now();
        let mut service = running(spec(), t0);
        service.stop(t0);
        service.on_exit(Exit::Code(0), false, t0);
        assert!(service.on_group_empty(t0 + secs(0.2)).is_empty());
        assert_eq!(service.state, State::Down);
    }

    #[test]
    fn finish_runs_after_every_exit_and_125_means_no_restart() {
        let t0 = Instant::now();
        let mut service = running(
            ServiceSpec {
                finish: Some(PathBuf::from("/services/web/finish")),
                ..spec()
            },
            t0,
        );
        let exit = Exit::Signal(libc::SIGTERM);
        assert_eq!(
            service.on_exit(exit, true, t0 + secs(20.0)),
            vec![Action::RunFinish { exit }]
        );
        service.on_finish_spawned(200, t0 + secs(20.0));
        assert_eq!(service.finish_pid(), Some(200));
        assert_eq!(
            service.on_finish_exit(Some(0), t0 + secs(20.1)),
            vec![Action::Spawn]
        );
        service.on_spawned(101, t0 + secs(20.1));
        service.on_exit(Exit::Code(2), true, t0 + secs(40.0));
        service.on_finish_spawned(201, t0 + secs(40.0));
        assert!(
            service
                .on_finish_exit(Some(125), t0 + secs(40.1))
                .is_empty()
        );
        assert_eq!(service.state, State::Finished);
    }

    #[test]
    fn a_finish_script_past_its_timeout_is_killed() {
        let t0 = Instant::now();
        let mut service = running(
            ServiceSpec {
                finish: Some(PathBuf::from("/services/web/finish")),
                ..spec()
            },
            t0,
        );
        service.on_exit(Exit::Code(1), true, t0);
        service.on_finish_spawned(200, t0);
        assert_eq!(
            service.on_deadline(t0 + secs(5.0)),
            vec![Action::Kill { pgid: 200 }]
        );
    }

    #[test]
    fn a_service_not_ready_in_time_is_stopped_and_restarted_by_its_policy() {
        let t0 = Instant::now();
        let mut service = Service::new(ServiceSpec {
            ready: Readiness::Command("true".to_owned()),
            ready_timeout: secs(2.0),
            ..spec()
        });
        service.start();
        assert_eq!(service.on_spawned(100, t0), vec![Action::ProbeReadiness]);
        assert!(!service.is_ready());
        let actions = service.on_deadline(t0 + secs(2.0));
        assert_eq!(
            actions,
            vec![Action::Signal {
                pgid: 100,
                signo: libc::SIGTERM
            }]
        );
        assert!(service.wanted);
        service.on_exit(Exit::Signal(libc::SIGTERM), true, t0 + secs(2.1));
        assert!(matches!(service.state, State::Backoff { .. }));
    }

    #[test]
    fn readiness_arrives_while_starting() {
        let t0 = Instant::now();
        let mut service = Service::new(ServiceSpec {
            ready: Readiness::NotifyFd(3),
            ..spec()
        });
        service.start();
        assert!(service.on_spawned(100, t0).is_empty());
        assert_eq!(service.deadline(), Some(t0 + secs(30.0)));
        service.on_ready();
        assert_eq!(service.state, State::Ready { pid: 100 });
    }

    #[test]
    fn stop_during_backoff_cancels_the_restart() {
        let t0 = Instant::now();
        let mut service = running(spec(), t0);
        service.on_exit(Exit::Code(1), true, t0);
        assert!(service.stop(t0).is_empty());
        assert_eq!(service.state, State::Down);
        assert_eq!(service.deadline(), None);
    }

    #[test]
    fn a_run_that_cannot_be_executed_follows_the_restart_policy() {
        let t0 = Instant::now();
        let mut service = Service::new(spec());
        service.start();
        service.on_spawn_failed(126, t0);
        assert_eq!(
            service.state,
            State::Backoff {
                until: t0 + secs(0.1)
            }
        );
        assert_eq!(service.last_exit, None, "no process ever ran");
    }

    #[test]
    fn a_zero_restart_delay_stays_zero_whatever_the_factor() {
        let t0 = Instant::now();
        let mut spec = spec();
        spec.backoff.initial = Duration::ZERO;
        spec.backoff.factor = 1e300;
        let mut service = running(spec, t0);
        for _ in 0..5 {
            assert_eq!(
                service.on_exit(Exit::Code(1), true, t0),
                vec![Action::Spawn]
            );
            service.on_spawned(100, t0);
        }
    }

    #[test]
    fn the_restart_count_saturates() {
        let t0 = Instant::now();
        let mut service = running(spec(), t0);
        service.restarts = u32::MAX;
        service.on_exit(Exit::Code(1), true, t0);
        assert_eq!(service.restarts, u32::MAX);
    }

    #[test]
    fn a_run_that_cannot_be_executed_is_never_restarted_at_once() {
        let t0 = Instant::now();
        let mut spec = spec();
        spec.backoff.initial = Duration::ZERO;
        spec.backoff.stable_after = Duration::ZERO;
        let mut service = Service::new(spec);
        service.start();
        assert!(service.on_spawn_failed(127, t0).is_empty());
        assert_eq!(
            service.state,
            State::Backoff {
                until: t0 + SPAWN_RETRY_MIN
            }
        );
        // A run that did start and exit keeps the configured (zero) delay.
        let mut service = running(service.spec.clone(), t0);
        assert_eq!(
            service.on_exit(Exit::Code(1), true, t0),
            vec![Action::Spawn]
        );
    }

    #[test]
    fn a_crash_that_leaves_its_group_behind_stops_the_rest_before_restarting() {
        let t0 = Instant::now();
        let mut service = running(spec(), t0);
        let actions = service.on_exit(Exit::Code(1), false, t0 + secs(20.0));
        assert_eq!(
            actions,
            vec![Action::Signal {
                pgid: 100,
                signo: libc::SIGTERM
            }]
        );
        assert_eq!(
            service.state,
            State::Stopping {
                pid: None,
                deadline: Some(t0 + secs(25.0))
            }
        );
        // The rest goes: a stable run restarts at once.
        assert_eq!(service.on_group_empty(t0 + secs(21.0)), vec![Action::Spawn]);

        // The rest ignores the signal: SIGKILL at the deadline, then the restart.
        service.on_spawned(200, t0 + secs(21.0));
        service.on_exit(Exit::Code(1), false, t0 + secs(40.0));
        assert_eq!(
            service.on_deadline(t0 + secs(45.0)),
            vec![Action::Kill { pgid: 200 }, Action::Spawn]
        );
    }
}
