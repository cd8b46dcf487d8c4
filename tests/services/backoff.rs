//! Backoff and giving up: a crash loop waits `restart-delay`, then `factor` times longer
//! each time up to `restart-delay-max`; a stable run restarts at once and resets the
//! backoff; `max-restarts` within `restart-window` makes the service `failed` for good
//! (loudly), and a `critical` one takes the container down with it.
//!
//! The delays are measured from the start times the services write themselves (in
//! nanoseconds, `date +%s%N`): a gap between two starts is at least the delay, and the
//! upper bounds leave [`SLACK`] for a loaded machine (a shell that starts a second late).
//! The exact delays are checked in pidvisor's log (`restarting in 300ms`); the timestamps
//! show that they are really waited, and that nothing longer is.

use std::time::Duration;

use crate::harness::timed;
use crate::layout::{Layout, log_count};

/// What a start may take beyond its delay on a machine busy with other builds and tests.
const SLACK: Duration = Duration::from_secs(2);

/// `echo START_NANOS >> starts`, the line every service here begins with.
fn record_start(layout: &Layout) -> String {
    format!("date +%s%N >> {}", layout.quoted("starts"))
}

/// The times (nanoseconds) the services wrote to `file`, one a line.
fn timestamps(layout: &Layout, file: &str) -> Vec<u64> {
    let lines = layout.lines(file);
    lines
        .iter()
        .map(|l| l.parse().expect("nanoseconds"))
        .collect()
}

/// Gaps between consecutive start times in the `starts` file.
fn gaps(layout: &Layout) -> Vec<Duration> {
    timestamps(layout, "starts")
        .windows(2)
        .map(|w| Duration::from_nanos(w[1] - w[0]))
        .collect()
}

/// The delays pidvisor announced (`restarting in 300ms`), in order.
fn announced_delays(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| l.split_once("restarting in ").map(|(_, d)| d.to_owned()))
        .collect()
}

#[test]
fn a_crash_loop_backs_off_exponentially_up_to_the_maximum() {
    let _timed = timed();
    let layout = Layout::new("backoff-growth");
    let starts = layout.quoted("starts");
    // Five quick crashes, then it stays up.
    let body = format!(
        "{}\nif [ \"$(wc -l < {starts})\" -ge 6 ]; then exec sleep 1000; fi\nexit 1",
        record_start(&layout)
    );
    let toml = "restart-delay = \"300ms\"\nrestart-delay-max = \"1200ms\"\nmax-restarts = 0\n";
    layout.service_with("crashy", &body, toml);
    let mut pidvisor = layout.start();
    layout.wait_for_lines(&mut pidvisor, "starts", 6);
    let run = pidvisor.shut_down();

    assert_eq!(
        announced_delays(&run.stderr),
        ["300ms", "600ms", "1.2s", "1.2s", "1.2s"],
        "{run}"
    );
    let expected = [300, 600, 1200, 1200, 1200].map(Duration::from_millis);
    let gaps = gaps(&layout);
    assert_eq!(gaps.len(), expected.len(), "{gaps:?}\n{run}");
    for (gap, delay) in gaps.iter().zip(expected) {
        assert!(
            *gap >= delay && *gap < delay + SLACK,
            "gap {gap:?} for a delay of {delay:?}; all gaps: {gaps:?}\n{run}"
        );
    }
}

#[test]
fn a_stable_run_restarts_at_once_and_resets_the_backoff() {
    let _timed = timed();
    let layout = Layout::new("backoff-reset");
    let starts = layout.quoted("starts");
    let ends = layout.quoted("ends");
    // Runs 1 and 2 crash at once, run 3 runs stably (longer than stable-after) then
    // crashes, run 4 crashes at once, run 5 stays up. A stable-after of 3 s keeps the
    // quick runs quick even when a loaded machine is slow to start a shell.
    let body = format!(
        "{}\nrun=$(wc -l < {starts})\n\
         case $run in\n\
           3) sleep 3.5 ;;\n\
           5) exec sleep 1000 ;;\n\
         esac\n\
         date +%s%N >> {ends}\nexit 1",
        record_start(&layout)
    );
    let toml = "restart-delay = \"300ms\"\nrestart-factor = 4.0\nrestart-delay-max = \"10s\"\n\
                stable-after = \"3s\"\nmax-restarts = 0\n";
    layout.service_with("flaky", &body, toml);
    let mut pidvisor = layout.start();
    layout.wait_for_lines(&mut pidvisor, "starts", 5);
    let run = pidvisor.shut_down();

    // No delay after the stable run; 300 ms (not 4.8 s) after the next quick crash.
    assert_eq!(
        announced_delays(&run.stderr),
        ["300ms", "1.2s", "300ms"],
        "{run}"
    );
    let gaps = gaps(&layout);
    let (starts, ends) = (timestamps(&layout, "starts"), timestamps(&layout, "ends"));
    let after_stable = Duration::from_nanos(starts[3] - ends[2]);
    assert!(
        after_stable < SLACK,
        "restart after the stable run took {after_stable:?}\n{run}"
    );
    let after_reset = gaps[3];
    assert!(
        after_reset >= Duration::from_millis(300)
            && after_reset < Duration::from_millis(300) + SLACK,
        "first crash after the reset waited {after_reset:?}\n{run}"
    );
}

#[test]
fn too_many_restarts_within_the_window_leave_the_service_failed() {
    let layout = Layout::new("give-up");
    let body = format!("{}\nexit 4", record_start(&layout));
    let toml = "restart-delay = \"10ms\"\nmax-restarts = 2\nrestart-window = \"1m\"\n";
    layout.service_with("hopeless", &body, toml);
    layout.service("bystander", "exec sleep 1000");
    let mut pidvisor = layout.start();
    pidvisor.wait_for_log("hopeless: FAILED: restarted 2 times within 60s; giving up");
    assert_eq!(
        layout.lines("starts").len(),
        3,
        "the first run and 2 restarts"
    );
    assert!(
        !pidvisor.has_exited(),
        "a service that is not critical fails alone"
    );
    let run = pidvisor.shut_down();
    assert_eq!(layout.lines("starts").len(), 3, "{run}");
    let failed = run
        .log_lines()
        .into_iter()
        .find(|l| l.contains("hopeless: FAILED"))
        .expect("the FAILED line");
    assert!(
        failed.starts_with("pidvisor: ERROR "),
        "logged as an error: {failed}"
    );
}

#[test]
fn restarts_spread_wider_than_the_window_never_give_up() {
    let layout = Layout::new("window");
    let starts = layout.quoted("starts");
    let body = format!(
        "{}\nif [ \"$(wc -l < {starts})\" -ge 4 ]; then exec sleep 1000; fi\nexit 1",
        record_start(&layout)
    );
    // Each restart comes 300 ms after the last one: never 2 within 250 ms.
    let toml = "restart-delay = \"300ms\"\nrestart-factor = 1.0\nmax-restarts = 1\n\
                restart-window = \"250ms\"\n";
    layout.service_with("patient", &body, toml);
    let mut pidvisor = layout.start();
    layout.wait_for_lines(&mut pidvisor, "starts", 4);
    let run = pidvisor.shut_down();
    assert_eq!(log_count(&run.stderr, "FAILED"), 0, "{run}");
}

#[test]
fn a_critical_service_that_fails_for_good_stops_the_container_with_its_code() {
    let layout = Layout::new("critical");
    let body = format!("{}\nexit 7", record_start(&layout));
    // After the bystander is ready, that is, once it has set its TERM trap.
    let toml = "critical = true\nrestart-delay = \"10ms\"\nmax-restarts = 1\n\
                after = [\"bystander\"]\n";
    layout.service_with("vital", &body, toml);
    let stopped = layout.quoted("bystander.stopped");
    layout.service_with(
        "bystander",
        &format!("trap 'echo stopped > {stopped}; exit 0' TERM\necho >&3\nsleep 1000 & wait"),
        "ready = { notify-fd = 3 }\n",
    );
    let run = layout.launch(&[]).run();
    run.assert_code(7);
    assert_eq!(layout.lines("starts").len(), 2, "{run}");
    assert!(
        run.stderr.contains(
            "pidvisor: ERROR vital: critical service stopped for good: shutting the container \
             down (exit code 7)"
        ),
        "{run}"
    );
    assert_eq!(layout.lines("bystander.stopped"), ["stopped"], "{run}");
}

#[test]
fn a_critical_service_that_ends_under_restart_never_stops_the_container() {
    let layout = Layout::new("critical-never");
    let toml = "critical = true\nrestart = \"never\"\n";
    layout.service_with("oneshot", "kill -KILL $$", toml);
    let run = layout.launch(&[]).run();
    run.assert_code(137);
    assert!(
        run.stderr
            .contains("oneshot: critical service stopped for good"),
        "{run}"
    );
}

#[test]
fn a_critical_service_that_exits_0_still_ends_the_container_with_a_failure() {
    let layout = Layout::new("critical-clean-exit");
    let toml = "critical = true\nrestart = \"never\"\n";
    layout.service_with("app", "exit 0", toml);
    let run = layout.launch(&[]).run();
    run.assert_code(1);
    assert!(
        run.stderr.contains(
            "app: critical service stopped for good: shutting the container down (exit code 1)"
        ),
        "{run}"
    );
}

/// Durations as long as service.toml and the command line accept (longer than a clock
/// deadline can hold, and longer still under `--time-scale 1000`) make pidvisor wait as
/// good as for ever; they never make it panic, which as PID 1 would end the container.
#[test]
fn durations_too_long_for_a_deadline_are_waited_for_ever_without_a_panic() {
    let layout = Layout::new("huge-durations");
    let huge = "\"3000000000000000h\"";
    let toml = format!(
        "restart-delay = {huge}\nrestart-delay-max = {huge}\nrestart-window = {huge}\n\
         stop-timeout = {huge}\nready-timeout = {huge}\nfinish-timeout = {huge}\n\
         max-restarts = 0\n"
    );
    layout.service_with("crashy", "exit 1", &toml);
    layout.service_with("steady", "exec sleep 1000", &toml);
    let mut pidvisor = layout
        .launch(&["--grace", "3000000000000000h", "--time-scale", "1000"])
        .start();
    pidvisor.wait_for_log("crashy: restarting in");
    pidvisor.wait_for_log("steady: started");
    let run = pidvisor.shut_down();
    assert_eq!(log_count(&run.stderr, "panicked"), 0, "{run}");
}

/// A `run` that cannot even be started (here: its working-dir is missing) under a policy
/// that restarts at once and never gives up is tried again after a short pause, not at
/// once and recursively until pidvisor's stack overflows.
#[test]
fn a_run_that_cannot_start_is_retried_after_a_pause_not_at_once() {
    let layout = Layout::new("spawn-fails-no-delay");
    let toml = "working-dir = \"missing\"\nrestart-delay = 0\nstable-after = 0\nmax-restarts = 0\n";
    layout.service_with("unstartable", "exit 0", toml);
    let mut pidvisor = layout.start();
    pidvisor.wait_until("a few attempts", |p| {
        log_count(&p.stderr_so_far(), "unstartable: cannot run") >= 3
    });
    assert!(!pidvisor.has_exited(), "{}", pidvisor.stderr_so_far());
    let run = pidvisor.shut_down();
    assert!(
        run.stderr.contains("unstartable: restarting in 100ms"),
        "{run}"
    );
}
