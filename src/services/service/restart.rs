//! The restart policy: what follows the end of a run (down, restart now, restart after a
//! backoff delay, give up after too many restarts in a window, or end the container for a
//! critical service). Part of the state machine: it decides, the supervisor acts.

use std::time::{Duration, Instant};

use tracing::{error, info};

use super::{Action, FINISH_NO_RESTART, Service, State};
use crate::duration::deadline_after;
use crate::init::reaper::Exit;
use crate::services::spec::RestartPolicy;

impl Service {
    /// Decides what follows an exit: down, restart now, restart later, or give up.
    /// A restart waits at least `min_delay`.
    pub(super) fn after_run(
        &mut self,
        exit: Exit,
        finish_code: Option<i32>,
        now: Instant,
        min_delay: Duration,
    ) -> Vec<Action> {
        let ran_for = self
            .started_at
            .map_or(Duration::ZERO, |at| now.saturating_duration_since(at));
        self.started_at = None;
        if !self.wanted {
            self.state = State::Down;
            return Vec::new();
        }
        let success = self.is_success(exit) && !self.stopped_unhealthy;
        let policy_restarts = match self.spec.restart {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => !success,
            RestartPolicy::Never => false,
        };
        if finish_code == Some(FINISH_NO_RESTART) || !policy_restarts {
            let why = if finish_code == Some(FINISH_NO_RESTART) {
                "finish exited 125"
            } else {
                "restart policy"
            };
            info!("{}: not restarted ({why})", self.name());
            self.state = State::Finished;
            return self.critical_stop(exit);
        }
        if self.spec.max_restarts > 0 {
            let window_start = now.checked_sub(self.spec.restart_window);
            while let Some(&oldest) = self.recent_restarts.front() {
                if window_start.is_some_and(|start| oldest < start) {
                    self.recent_restarts.pop_front();
                } else {
                    break;
                }
            }
            if self.recent_restarts.len() >= self.spec.max_restarts as usize {
                error!(
                    "{}: FAILED: restarted {} times within {:?}; giving up (start it again by hand)",
                    self.name(),
                    self.spec.max_restarts,
                    self.spec.restart_window
                );
                self.state = State::Failed;
                return self.critical_stop(exit);
            }
            self.recent_restarts.push_back(now);
        }
        // Saturating: a crash loop that never gives up (max-restarts = 0) may run for ever.
        self.restarts = self.restarts.saturating_add(1);
        let delay = self.next_delay(ran_for).max(min_delay);
        if delay.is_zero() {
            self.state = State::Down;
            vec![Action::Spawn]
        } else {
            info!("{}: restarting in {delay:?}", self.name());
            self.state = State::Backoff {
                until: deadline_after(now, delay),
            };
            Vec::new()
        }
    }

    /// A run that lasted `stable_after` restarts at once and resets the backoff; quick
    /// crashes wait `initial * factor^(n-1)`, capped at `max`.
    fn next_delay(&mut self, ran_for: Duration) -> Duration {
        let backoff = &self.spec.backoff;
        if ran_for >= backoff.stable_after {
            self.quick_crashes = 0;
            return Duration::ZERO;
        }
        let exponent = self.quick_crashes.min(64) as i32;
        self.quick_crashes = self.quick_crashes.saturating_add(1);
        if backoff.initial.is_zero() {
            // Not 0 * factor^n, which is NaN (and so became `max`) once factor^n is inf.
            return Duration::ZERO;
        }
        let seconds = backoff.initial.as_secs_f64() * backoff.factor.powi(exponent);
        let delay = Duration::try_from_secs_f64(seconds)
            .unwrap_or(backoff.max)
            .min(backoff.max);
        if backoff.jitter {
            // Not `mul_f64`, which panics when rounding takes the product past Duration::MAX.
            Duration::try_from_secs_f64(delay.as_secs_f64() * (0.5 + 0.5 * random_fraction()))
                .unwrap_or(delay)
        } else {
            delay
        }
    }

    pub(super) fn is_success(&self, exit: Exit) -> bool {
        matches!(exit, Exit::Code(code) if self.spec.success_exit_codes.contains(&code))
    }

    /// A critical service that ends for good ends the container, never with code 0: the
    /// container was meant to run as long as the service, so its end is a failure to
    /// whatever restarts containers (its own code, or 1 when that was 0).
    fn critical_stop(&self, exit: Exit) -> Vec<Action> {
        if !self.spec.critical {
            return Vec::new();
        }
        let exit_code = match exit.exit_code() {
            0 => 1,
            code => code,
        };
        error!(
            "{}: critical service stopped for good: shutting the container down (exit code {exit_code})",
            self.name()
        );
        vec![Action::ShutDownContainer { exit_code }]
    }
}

/// A number in [0, 1) from the kernel's random pool (only used for optional jitter).
fn random_fraction() -> f64 {
    let mut bytes = [0u8; 4];
    // SAFETY: we ask for at most bytes.len() bytes into a buffer of that size.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if n != bytes.len() as isize {
        return 0.5;
    }
    f64::from(u32::from_ne_bytes(bytes)) / (f64::from(u32::MAX) + 1.0)
}
