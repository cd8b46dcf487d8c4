//! What one service's liveness checks have said: failures in a row, whether it is healthy,
//! and the last result, for `status` and `health`. Pure: the supervisor runs the checks
//! and reports each result here, and this says when the service turns unhealthy (the
//! supervisor then restarts it) or healthy again (each an event).

use std::time::Instant;

/// A change worth an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Unchanged,
    /// Failed `failures` checks in a row: restart it.
    Unhealthy,
    /// Passed a check after having been reported unhealthy.
    Healthy,
}

/// The last check's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastCheck {
    pub ok: bool,
    pub message: String,
    pub at: Instant,
}

/// The record of one service's checks.
#[derive(Debug, Default)]
pub struct Liveness {
    /// The run these results are about (the supervisor's count of runs).
    run: u64,
    in_a_row: u32,
    /// `None` until the current run's first check.
    healthy: Option<bool>,
    /// An `unhealthy` event was the last one sent: the next success sends `healthy`.
    reported_unhealthy: bool,
    pub last: Option<LastCheck>,
}

impl Liveness {
    /// Records a result; `failures` is how many in a row make it unhealthy.
    pub fn record(&mut self, ok: bool, message: String, at: Instant, failures: u32) -> Verdict {
        self.last = Some(LastCheck { ok, message, at });
        if ok {
            self.in_a_row = 0;
            self.healthy = Some(true);
            if std::mem::take(&mut self.reported_unhealthy) {
                return Verdict::Healthy;
            }
            return Verdict::Unchanged;
        }
        self.in_a_row = self.in_a_row.saturating_add(1);
        if self.in_a_row >= failures && self.healthy != Some(false) {
            self.healthy = Some(false);
            self.reported_unhealthy = true;
            return Verdict::Unhealthy;
        }
        Verdict::Unchanged
    }

    /// The service's current run is `run`: a new one starts with a clean count, neither
    /// healthy nor unhealthy until checked.
    pub fn follow_run(&mut self, run: u64) {
        if run != self.run {
            self.run = run;
            self.in_a_row = 0;
            self.healthy = None;
        }
    }

    /// Failures in a row so far.
    pub fn failures_in_a_row(&self) -> u32 {
        self.in_a_row
    }

    /// `healthy`, `unhealthy`, or `unknown` before the run's first check.
    pub fn health(&self) -> &'static str {
        match self.healthy {
            Some(true) => "healthy",
            Some(false) => "unhealthy",
            None => "unknown",
        }
    }

    /// Why it is unhealthy, if it is.
    pub fn unhealthy_because(&self) -> Option<&str> {
        match (self.healthy, &self.last) {
            (Some(false), Some(last)) => Some(&last.message),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unhealthy_after_the_failures_in_a_row_once_and_healthy_again_after_a_success() {
        let t = Instant::now();
        let mut liveness = Liveness::default();
        assert_eq!(liveness.health(), "unknown");
        assert_eq!(
            liveness.record(false, "HTTP 500".into(), t, 3),
            Verdict::Unchanged
        );
        assert_eq!(
            liveness.record(true, "HTTP 200".into(), t, 3),
            Verdict::Unchanged
        );
        assert_eq!(liveness.record(false, "a".into(), t, 3), Verdict::Unchanged);
        assert_eq!(liveness.record(false, "b".into(), t, 3), Verdict::Unchanged);
        assert_eq!(
            liveness.unhealthy_because(),
            None,
            "two in a row are not three"
        );
        assert_eq!(liveness.record(false, "c".into(), t, 3), Verdict::Unhealthy);
        assert_eq!(liveness.unhealthy_because(), Some("c"));
        assert_eq!(
            liveness.record(false, "d".into(), t, 3),
            Verdict::Unchanged,
            "once"
        );
        // Still the same run: still unhealthy; restarted: neither until checked.
        liveness.follow_run(0);
        assert_eq!(liveness.health(), "unhealthy");
        liveness.follow_run(1);
        assert_eq!(
            (liveness.health(), liveness.failures_in_a_row()),
            ("unknown", 0)
        );
        assert_eq!(liveness.record(true, "ok".into(), t, 3), Verdict::Healthy);
        assert_eq!(liveness.record(true, "ok".into(), t, 3), Verdict::Unchanged);
        assert_eq!(liveness.health(), "healthy");
    }
}
