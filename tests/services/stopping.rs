//! Stop escalation: a service that ignores its stop signal gets SIGKILL on its whole process
//! group once `stop-timeout` is over, so a shell wrapper and the grandchild it started
//! both disappear (also when `run` itself exits, stopping or crashing, but leaves such a
//! process behind); at shutdown that bounds the time to stop, whatever `--grace` says.

use std::time::{Duration, Instant};

use crate::harness::{PATIENCE, ProcStat, descendants_of, proc_stat, timed};
use crate::layout::{Layout, log_count};

/// `run` ignores TERM and starts `sh -c 'sleep & wait'` (which inherits the ignored TERM):
/// a wrapper, its child and its grandchild, all in the service's process group.
const IGNORES_TERM: &str = "trap '' TERM\nsh -c 'sleep 1000 & wait' &\nwait";

/// Whether that very process (not a later one with its pid) still exists.
fn alive(process: &ProcStat) -> bool {
    proc_stat(process.pid).is_some_and(|now| now.starttime == process.starttime)
}

#[test]
fn a_service_that_ignores_its_stop_signal_is_killed_with_its_whole_group() {
    let layout = Layout::new("stop-escalation");
    // Never ready: stopped after 4 s, SIGKILLed 500 ms later; pidvisor keeps running. The
    // 4 s leave a loaded machine time to run the trap and to let the test see the family.
    let toml = "ready = { notify-fd = 3 }\nready-timeout = \"4s\"\nstop-timeout = \"500ms\"\n\
                restart = \"never\"\n";
    layout.service_with("stubborn", IGNORES_TERM, toml);
    let mut pidvisor = layout.start();
    let pid1 = pidvisor.host_pid();
    let mut family: Vec<ProcStat> = Vec::new();
    pidvisor.wait_until("the wrapper and its grandchild run", |_| {
        family = descendants_of(pid1);
        family.iter().any(|p| p.comm == "sleep") && family.iter().any(|p| p.comm == "run")
    });
    let wrapper = family
        .iter()
        .find(|p| p.comm == "run" && p.ppid == pid1)
        .expect("the wrapper is pidvisor's child")
        .clone();
    assert!(
        family.iter().all(|p| p.pgrp == wrapper.pid),
        "all in one group: {family:?}"
    );
    pidvisor.wait_until("the whole group is gone", |_| !family.iter().any(alive));
    pidvisor.wait_for_log("stubborn: not restarted (restart policy)");
    assert!(!pidvisor.has_exited());
    let stderr = pidvisor.stderr_so_far();
    assert!(
        stderr.contains(
            "stubborn: still running 500ms after SIGTERM: sending SIGKILL to its process group"
        ),
        "{stderr}"
    );
    pidvisor.shut_down();
}

#[test]
fn at_shutdown_the_stop_timeout_bounds_a_stubborn_service_not_the_grace_time() {
    let _timed = timed();
    let layout = Layout::new("stop-at-shutdown");
    layout.service_with("stubborn", IGNORES_TERM, "stop-timeout = \"500ms\"\n");
    // Its `run` exits at once on TERM, but leaves a child that ignores TERM behind.
    layout.service_with(
        "leaver",
        "sh -c 'trap \"\" TERM; exec sleep 1001' &\ntrap 'exit 0' TERM\nwait",
        "stop-timeout = \"500ms\"\n",
    );
    let mut pidvisor = layout.launch(&["--grace", "60s"]).start();
    let pid1 = pidvisor.host_pid();
    pidvisor.wait_until("both services' sleeps run", |_| {
        let commands: Vec<String> = descendants_of(pid1)
            .iter()
            .map(|p| cmdline(p.pid))
            .collect();
        ["sleep 1000", "sleep 1001"]
            .iter()
            .all(|sleep| commands.iter().any(|c| c == sleep))
    });
    let sent = Instant::now();
    pidvisor.signal(libc::SIGTERM);
    let run = pidvisor.finish(PATIENCE);
    let took = run.exited_at - sent;
    run.assert_code(0);
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(10),
        "took {took:?}\n{run}"
    );
    for name in ["stubborn", "leaver"] {
        assert!(
            run.stderr
                .contains(&format!("{name}: still running 500ms after SIGTERM")),
            "{run}"
        );
    }
}

/// The command line of `pid`, its words joined by spaces.
fn cmdline(pid: i32) -> String {
    let bytes = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let words: Vec<String> = bytes
        .split(|&b| b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect();
    words.join(" ")
}

#[test]
fn a_service_is_stopped_with_its_stop_signal() {
    let layout = Layout::new("stop-signal");
    let got = layout.quoted("got");
    // Ready once its handlers are set; TERM would kill it without a word.
    layout.service_with(
        "graceful",
        &format!(
            "trap 'echo INT >> {got}; exit 0' INT\n\
             trap 'echo TERM >> {got}; exit 0' TERM\n\
             echo >&3\nsleep 1000 & wait"
        ),
        "stop-signal = \"SIGINT\"\nready = { notify-fd = 3 }\n",
    );
    let mut pidvisor = layout.start();
    pidvisor.wait_for_log("graceful: ready");
    let run = pidvisor.shut_down();
    assert_eq!(layout.lines("got"), ["INT"], "{run}");
    assert!(
        run.stderr.contains("graceful: stopped (exit code 0)"),
        "{run}"
    );
}

#[test]
fn what_a_crashed_run_leaves_in_its_group_is_stopped_before_the_restart() {
    let layout = Layout::new("leftovers");
    let runs = layout.quoted("runs");
    // Every run leaves a child that ignores TERM (from its start: the ignoring is
    // inherited), and crashes; the third run stays.
    layout.service_with(
        "leaky",
        &format!(
            "echo run >> {runs}\n\
             if [ \"$(wc -l < {runs})\" -ge 3 ]; then exec sleep 1000; fi\n\
             trap '' TERM\nsleep 1002 &\nexit 1"
        ),
        "restart-delay = \"10ms\"\nstop-timeout = \"300ms\"\n",
    );
    let mut pidvisor = layout.start();
    layout.wait_for_lines(&mut pidvisor, "runs", 3);
    let pid1 = pidvisor.host_pid();
    pidvisor.wait_until("no leftover of a crashed run is running", |_| {
        !descendants_of(pid1)
            .iter()
            .any(|p| cmdline(p.pid) == "sleep 1002")
    });
    let run = pidvisor.shut_down();
    let killed = "leaky: still running 300ms after SIGTERM: sending SIGKILL to its process group";
    assert_eq!(log_count(&run.stderr, killed), 2, "{run}");
}
