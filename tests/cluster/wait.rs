//! Waiting for a condition that the test observes by asking (HAProxy's server list, a
//! file in a container): asked again every 100 ms until it holds or a deadline passes.

use std::thread;
use std::time::{Duration, Instant};

/// How often a condition is asked again.
const POLL: Duration = Duration::from_millis(100);

/// Asks `check` until it returns `Some`, and returns that with the time it took; panics
/// after `patience` with `what` and the last answer (`last` renders it).
pub fn until<T, A: std::fmt::Debug>(
    what: &str,
    patience: Duration,
    mut check: impl FnMut() -> Result<T, A>,
) -> (T, Duration) {
    let start = Instant::now();
    loop {
        match check() {
            Ok(value) => return (value, start.elapsed()),
            Err(last) => {
                assert!(
                    start.elapsed() < patience,
                    "timed out after {patience:?} waiting until {what}; last seen: {last:?}"
                );
            }
        }
        thread::sleep(POLL);
    }
}
