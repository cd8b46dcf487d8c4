//! Hostile services: each does one thing a supervisor must survive, next to a bystander
//! that must not notice. pidvisor keeps running, stops each as documented, leaves no
//! zombie, and the bystander keeps its one and only run.

use crate::ctl::ctl_ok;
use crate::harness::{Pidvisor, children_of, status_field};
use crate::layout::{Layout, log_count};

/// A service that runs quietly for ever, counting its runs in `bystander.runs`.
fn bystander(layout: &Layout) {
    let runs = layout.quoted("bystander.runs");
    layout.service("bystander", &format!("echo run >> {runs}\nexec sleep 1000"));
}

/// Stops `name` with pidvisorctl and waits until it is down.
fn stop(layout: &Layout, name: &str) {
    ctl_ok(&layout.dir, &["stop", name]);
    ctl_ok(
        &layout.dir,
        &["wait", name, "--state", "down", "--timeout", "60s"],
    );
}

/// The bystander ran once and still runs; pidvisor has no zombie child.
fn check_undisturbed(layout: &Layout, pidvisor: &mut Pidvisor) {
    assert_eq!(
        layout.lines("bystander.runs").len(),
        1,
        "the bystander ran once"
    );
    let root = pidvisor.host_pid();
    pidvisor.wait_until("pidvisor has no zombie child", |_| {
        children_of(root).iter().all(|p| p.state != 'Z')
    });
}

#[test]
fn a_service_that_ignores_sigterm_is_killed_after_its_stop_timeout() {
    let layout = Layout::new("ignores-term");
    bystander(&layout);
    let up = layout.quoted("deaf.up");
    layout.service_with(
        "deaf",
        &format!("trap '' TERM\necho up > {up}\nexec sleep 1000"),
        "stop-timeout = \"200ms\"\n",
    );
    let mut pidvisor = layout.start();
    pidvisor.wait_for_file(&layout.path("deaf.up"));
    layout.wait_for_lines(&mut pidvisor, "bystander.runs", 1);
    stop(&layout, "deaf");
    pidvisor.wait_for_log("deaf: stopped (killed by SIGKILL)");
    check_undisturbed(&layout, &mut pidvisor);
    pidvisor.shut_down();
}

#[test]
fn a_service_that_stopped_itself_gets_sigcont_with_its_stop_signal() {
    let layout = Layout::new("stops-itself");
    bystander(&layout);
    // It handles SIGTERM, which it can only do once continued: if pidvisor sent no
    // SIGCONT, it would be killed by SIGKILL after its (long) stop-timeout instead.
    layout.service_with(
        "frozen",
        "trap 'exit 0' TERM\nkill -STOP $$\nwhile :; do sleep 1; done",
        "stop-timeout = \"10m\"\n",
    );
    let mut pidvisor = layout.start();
    let root = pidvisor.host_pid();
    pidvisor.wait_until("the service has stopped itself", |_| {
        children_of(root).iter().any(|p| p.state == 'T')
    });
    layout.wait_for_lines(&mut pidvisor, "bystander.runs", 1);
    stop(&layout, "frozen");
    pidvisor.wait_for_log("frozen: stopped (exit code 0)");
    check_undisturbed(&layout, &mut pidvisor);
    pidvisor.shut_down();
}

#[test]
fn a_service_that_closes_its_stdout_still_reaches_stderr_and_restarts() {
    let layout = Layout::new("closes-stdout");
    bystander(&layout);
    let runs = layout.quoted("closer.runs");
    layout.service_with(
        "closer",
        &format!("exec >&-\necho run >> {runs}\necho \"still here\" >&2\nexit 1"),
        "restart-delay = \"10ms\"\nrestart-factor = 1.0\nmax-restarts = 0\n",
    );
    let mut pidvisor = layout.start();
    layout.wait_for_lines(&mut pidvisor, "closer.runs", 3);
    pidvisor.wait_until("its stderr lines are relayed", |p| {
        log_count(&p.stderr_so_far(), "closer | still here") >= 3
    });
    check_undisturbed(&layout, &mut pidvisor);
    pidvisor.shut_down();
}

#[test]
fn hundreds_of_megabytes_without_a_newline_cost_bounded_memory_and_lose_nothing() {
    const BYTES: usize = 200_000_000;
    let _heavy = crate::harness::heavy();
    let layout = Layout::new("no-newline-flood");
    bystander(&layout);
    let done = layout.quoted("flood.done");
    layout.service(
        "flood",
        &format!("head -c {BYTES} /dev/zero | tr '\\0' x\necho done > {done}\nexec sleep 1000"),
    );
    let mut pidvisor = layout.start();
    pidvisor.wait_for_file(&layout.path("flood.done"));
    let root = pidvisor.host_pid();
    let peak_kib: u64 = status_field(root, "VmHWM")
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmHWM");
    check_undisturbed(&layout, &mut pidvisor);
    let run = pidvisor.shut_down();
    let mut xs = 0;
    for line in run.stdout.lines() {
        let piece = line
            .strip_prefix("flood | ")
            .unwrap_or_else(|| panic!("a line not from the flood: {:.80}", line));
        assert!(piece.len() <= 16 * 1024, "a piece longer than 16 KiB");
        assert!(piece.bytes().all(|b| b == b'x'), "only x in the pieces");
        xs += piece.len();
    }
    assert_eq!(xs, BYTES, "every byte arrived once");
    println!("no-newline flood: {BYTES} bytes relayed; pidvisor's peak RSS {peak_kib} KiB");
    assert!(
        peak_kib < 64 * 1024,
        "pidvisor's peak RSS is {peak_kib} KiB"
    );
}

#[test]
fn a_child_in_a_process_group_of_its_own_is_stopped_with_its_service_by_its_cgroup() {
    let layout = Layout::new("own-group");
    bystander(&layout);
    let pids = layout.quoted("grouped.pid");
    layout.service(
        "grouped",
        &format!(
            "{} -c 'import os, time; os.setpgid(0, 0); open({pids:?}, \"w\").write(str(os.getpid())); time.sleep(1000)' &\nexec sleep 1000",
            crate::harness::python()
        ),
    );
    let mut pidvisor = layout.start();
    pidvisor.wait_for_file(&layout.path("grouped.pid"));
    let cgroups = pidvisor.stderr_so_far().contains("per-service cgroups in ");
    stop(&layout, "grouped");
    let root = pidvisor.host_pid();
    let left: Vec<_> = crate::harness::descendants_of(root)
        .into_iter()
        .filter(|p| p.comm.starts_with("python"))
        .collect();
    if cgroups {
        assert!(
            left.is_empty(),
            "the child in its own group was stopped: {left:?}"
        );
    } else {
        assert_eq!(left.len(), 1, "without cgroups it runs on (documented)");
    }
    check_undisturbed(&layout, &mut pidvisor);
    pidvisor.shut_down();
}
