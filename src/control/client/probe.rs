//! `pidvisorctl health` and `ping`, made for orchestrators' probes (`HEALTHCHECK CMD
//! pidvisorctl health`, a Kubernetes exec probe): the answer is the exit code, 0 for yes
//! and 1 for anything else, and the whole run is bounded by a hard deadline, so that a
//! stopped or stuck pidvisor makes the probe fail, never hang.

use std::time::Duration;

use serde_json::Value;

use super::render::text;

/// What the deadline's handler writes before exiting 1.
const NO_ANSWER: &[u8] = b"pidvisorctl: pidvisor did not answer within the timeout\n";

/// Exits 1 once `within` has passed, wherever the run is (a `connect` to a full backlog,
/// a read from a stopped pidvisor): `SIGALRM` from a one-shot interval timer.
pub(super) fn arm_deadline(within: Duration) -> Result<(), String> {
    extern "C" fn on_alarm(_: libc::c_int) {
        // SAFETY: write(2) and _exit(2) are async-signal-safe; the buffer is static.
        unsafe {
            libc::write(2, NO_ANSWER.as_ptr().cast(), NO_ANSWER.len());
            libc::_exit(1);
        }
    }
    // SAFETY: an all-zero sigaction is valid; we set its handler and an empty mask.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = on_alarm as *const () as libc::sighandler_t;
    // SAFETY: installs a handler that only calls async-signal-safe functions.
    let installed = unsafe {
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGALRM, &action, std::ptr::null_mut())
    };
    if installed != 0 {
        return Err(format!(
            "cannot set the timeout: {}",
            std::io::Error::last_os_error()
        ));
    }
    // At least a microsecond: a zero timer would be no timer at all.
    let micros = within.as_micros().max(1);
    let timer = libc::itimerval {
        it_interval: libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
        it_value: libc::timeval {
            // `as _`: time_t and suseconds_t differ between libcs (musl's are deprecated
            // aliases); a timeout of over 68 years is capped there, which is no limit.
            tv_sec: (micros / 1_000_000).min(i32::MAX as u128) as _,
            tv_usec: (micros % 1_000_000) as _,
        },
    };
    // SAFETY: one valid itimerval; the old value is not wanted.
    if unsafe { libc::setitimer(libc::ITIMER_REAL, &timer, std::ptr::null_mut()) } != 0 {
        return Err(format!(
            "cannot set the timeout: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// The lines `health` prints for people, and whether the answer is yes.
pub(super) fn describe_health(reply: &Value) -> (bool, Vec<String>) {
    let healthy = reply["healthy"] == Value::Bool(true);
    let mut lines = Vec::new();
    if let Some(why) = reply["container"].as_str() {
        lines.push(format!("pidvisor: {why}"));
    }
    for problem in reply["problems"].as_array().into_iter().flatten() {
        lines.push(format!(
            "{}: {}",
            text(&problem["service"]),
            text(&problem["why"])
        ));
    }
    if healthy {
        lines.push("healthy".to_owned());
    } else if lines.is_empty() {
        lines.push("not healthy".to_owned());
    }
    (healthy, lines)
}

/// The line `ping` prints: pidvisor's stage.
pub(super) fn describe_ping(reply: &Value) -> String {
    format!("pidvisor: {}", text(&reply["stage"]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_lists_each_reason_and_says_healthy_only_when_it_is() {
        let reply: Value = serde_json::from_str(
            r#"{"ok":true,"healthy":false,"stage":"draining","container":"draining before the stop (3.0s left)",
                "problems":[{"service":"web","why":"unhealthy: HTTP 500"},{"service":"db","why":"starting for 1.0s, not ready yet"}]}"#,
        )
        .expect("JSON");
        let (healthy, lines) = describe_health(&reply);
        assert!(!healthy);
        assert_eq!(
            lines,
            [
                "pidvisor: draining before the stop (3.0s left)",
                "web: unhealthy: HTTP 500",
                "db: starting for 1.0s, not ready yet"
            ]
        );
        let reply: Value = serde_json::from_str(
            r#"{"ok":true,"healthy":true,"stage":"up","container":null,"problems":[]}"#,
        )
        .expect("JSON");
        assert_eq!(describe_health(&reply), (true, vec!["healthy".to_owned()]));
    }
}
