//! Resource exhaustion: forks that fail (a process limit reached), descriptors that run
//! out while running, a full disk under the events file, and a service out of memory.
//! Each time pidvisor logs what failed, retries later, keeps answering `pidvisorctl`,
//! and recovers once the resource is back; the bystander is not disturbed.
//!
//! The process limit is a cgroup v1 `pids` controller's `pids.max` rather than
//! `RLIMIT_NPROC`, which does not bind root; `fork` fails the same way (EAGAIN). The
//! memory limit is a cgroup v1 `memory` controller's. Both tests say so and pass without
//! checking anything where those controllers are not mounted read-write.

use std::fs;
use std::path::{Path, PathBuf};

use crate::ctl::ctl_ok;
use crate::harness::{descendants_of, status_field};
use crate::layout::{Layout, log_count};

/// A v1 controller's folder for this test, removed on drop (once empty).
struct V1Group(PathBuf);

impl V1Group {
    fn new(controller: &str, name: &str) -> Option<V1Group> {
        let mount = Path::new("/sys/fs/cgroup").join(controller);
        let dir = mount.join(format!("pidvisor-test-{}-{name}", std::process::id()));
        fs::create_dir(&dir).ok()?;
        Some(V1Group(dir))
    }

    fn set(&self, file: &str, value: &str) {
        fs::write(self.0.join(file), value)
            .unwrap_or_else(|e| panic!("writing {value} to {}/{file}: {e}", self.0.display()));
    }

    fn procs(&self) -> String {
        self.0.join("cgroup.procs").to_string_lossy().into_owned()
    }
}

impl Drop for V1Group {
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.0);
    }
}

fn bystander(layout: &Layout) {
    let runs = layout.quoted("bystander.runs");
    layout.service("bystander", &format!("echo run >> {runs}\nexec sleep 1000"));
}

fn crasher(layout: &Layout) {
    let runs = layout.quoted("crasher.runs");
    layout.service_with(
        "crasher",
        &format!("echo run >> {runs}\nexit 1"),
        "restart-delay = \"10ms\"\nrestart-factor = 1.0\nmax-restarts = 0\n",
    );
}

#[test]
fn forks_that_fail_are_logged_and_retried_until_they_succeed_again() {
    let Some(pids) = V1Group::new("pids", "nproc") else {
        eprintln!("skipped: no writable cgroup v1 pids controller here");
        return;
    };
    let layout = Layout::new("fork-fails");
    bystander(&layout);
    crasher(&layout);
    let mut pidvisor = layout.start();
    layout.wait_for_lines(&mut pidvisor, "bystander.runs", 1);
    layout.wait_for_lines(&mut pidvisor, "crasher.runs", 2);
    // pidvisor and everything it runs into the group, which then allows no new process.
    let root = pidvisor.host_pid();
    for pid in std::iter::once(root).chain(descendants_of(root).iter().map(|p| p.pid)) {
        let _ = fs::write(pids.procs(), pid.to_string());
    }
    pids.set("pids.max", "2");
    pidvisor.wait_until("three forks have failed", |p| {
        log_count(&p.stderr_so_far(), "crasher: cannot run") >= 3
    });
    let failure = pidvisor
        .stderr_so_far()
        .lines()
        .find(|l| l.contains("crasher: cannot run"))
        .map(str::to_owned)
        .unwrap_or_default();
    assert!(
        failure.contains("Resource temporarily unavailable"),
        "{failure}"
    );
    ctl_ok(&layout.dir, &["status"]);
    let runs = layout.lines("crasher.runs").len();
    pids.set("pids.max", "max");
    layout.wait_for_lines(&mut pidvisor, "crasher.runs", runs + 2);
    assert_eq!(
        layout.lines("bystander.runs").len(),
        1,
        "the bystander ran once"
    );
    pidvisor.shut_down();
}

#[test]
fn a_full_disk_under_the_events_file_is_reported_once_and_changes_nothing_else() {
    let layout = Layout::new("events-full-disk");
    bystander(&layout);
    crasher(&layout);
    let mut pidvisor = layout.launch(&["--events-file", "/dev/full"]).start();
    layout.wait_for_lines(&mut pidvisor, "crasher.runs", 5);
    let events = ctl_ok(&layout.dir, &["events", "--json"]);
    assert!(
        events.contains("\"started\""),
        "the events are still kept: {events}"
    );
    let run = pidvisor.shut_down();
    assert_eq!(
        log_count(
            &run.stderr,
            "writing the events file: No space left on device"
        ),
        1,
        "{run}"
    );
}

#[test]
fn descriptors_that_run_out_while_running_are_retried_and_recovered_from() {
    let layout = Layout::new("descriptors-run-out");
    bystander(&layout);
    crasher(&layout);
    let mut pidvisor = layout.start();
    layout.wait_for_lines(&mut pidvisor, "crasher.runs", 2);
    let root = pidvisor.host_pid();
    // The lowest free descriptor number: a limit there leaves no number to allocate.
    let open: Vec<usize> = fs::read_dir(format!("/proc/{root}/fd"))
        .expect("fd dir")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    let lowest_free = (0..).find(|n| !open.contains(n)).expect("a free number");
    // The soft limit only: raising a hard limit again needs CAP_SYS_RESOURCE.
    let limit = |soft: &str| {
        let status = std::process::Command::new("prlimit")
            .args(["--pid", &root.to_string(), &format!("--nofile={soft}:")])
            .status()
            .expect("prlimit");
        assert!(status.success(), "prlimit --nofile={soft}:");
    };
    let limits = fs::read_to_string(format!("/proc/{root}/limits")).expect("limits");
    let original = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .expect("the soft limit on open files")
        .to_owned();
    // No descriptor left: spawns fail, and so does accepting a control client.
    limit(&lowest_free.to_string());
    pidvisor.wait_until("three spawns have failed", |p| {
        log_count(&p.stderr_so_far(), "crasher: cannot") >= 3
    });
    let csw = |pid| {
        status_field(pid, "voluntary_ctxt_switches")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let before = csw(root);
    let refused = crate::ctl::ctl(&layout.dir, &["status"]);
    let after = csw(root);
    println!(
        "out of descriptors: pidvisorctl status gave {:?}; pidvisor woke {} times meanwhile",
        refused.status.code(),
        after - before
    );
    limit(&original);
    ctl_ok(&layout.dir, &["status"]);
    let runs = layout.lines("crasher.runs").len();
    layout.wait_for_lines(&mut pidvisor, "crasher.runs", runs + 2);
    assert_eq!(
        layout.lines("bystander.runs").len(),
        1,
        "the bystander ran once"
    );
    pidvisor.shut_down();
}

#[test]
fn a_service_killed_for_want_of_memory_is_restarted_and_pidvisor_is_untouched() {
    let Some(memory) = V1Group::new("memory", "oom") else {
        eprintln!("skipped: no writable cgroup v1 memory controller here");
        return;
    };
    memory.set("memory.limit_in_bytes", &(32 << 20).to_string());
    let layout = Layout::new("out-of-memory");
    bystander(&layout);
    let runs = layout.quoted("hog.runs");
    layout.service_with(
        "hog",
        &format!(
            "echo $$ > {}\necho run >> {runs}\nexec {} -c 'x = bytearray(256 << 20); import time; time.sleep(1000)'",
            crate::harness::sh_quote(&memory.procs()),
            crate::harness::python()
        ),
        "restart-delay = \"10ms\"\nrestart-factor = 1.0\nmax-restarts = 0\n",
    );
    let mut pidvisor = layout.start();
    layout.wait_for_lines(&mut pidvisor, "hog.runs", 3);
    pidvisor.wait_for_log("hog: killed by SIGKILL");
    assert_eq!(
        layout.lines("bystander.runs").len(),
        1,
        "the bystander ran once"
    );
    ctl_ok(&layout.dir, &["status"]);
    pidvisor.shut_down();
}
