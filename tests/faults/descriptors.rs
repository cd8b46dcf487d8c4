//! Too many open files at start: under a hard limit of 64 descriptors, 40 services cannot
//! all get their output pipes. Those that cannot are left out, each with a message naming
//! the system call and the fix, as for any broken service; the others run, and keep
//! enough descriptors to be restarted.

use crate::harness::heavy;
use crate::layout::{Layout, log_count};

const SERVICES: usize = 40;

#[test]
fn services_that_cannot_get_descriptors_are_left_out_and_the_others_run() {
    let _heavy = heavy();
    let layout = Layout::new("out-of-descriptors");
    let started = layout.quoted("started");
    for index in 0..SERVICES {
        layout.service(
            &format!("s{index:02}"),
            &format!("echo \"$PIDVISOR_SERVICE\" >> {started}\nexec sleep 1000"),
        );
    }
    let mut pidvisor = layout.launch(&[]).hard_open_files_limit(64).start();
    // The line that lists the services that run (s00 always does), after every error.
    pidvisor.wait_for_log(" services: s00");
    let left_out = log_count(&pidvisor.stderr_so_far(), "left out");
    let running = SERVICES - left_out;
    assert!(
        running > 0 && left_out > 0,
        "some services run, some are left out: {left_out} left out\n{}",
        pidvisor.stderr_so_far()
    );
    let first = layout.wait_for_lines(&mut pidvisor, "started", running);
    // The ones that run can still be restarted: kill one, it comes back.
    // A service writes its line, then execs `sleep`: wait for an exec, not just the lines.
    let victim = pidvisor.child_running("sleep");
    // SAFETY: kill has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(victim.pid, libc::SIGKILL) }, 0);
    layout.wait_for_lines(&mut pidvisor, "started", running + 1);
    let run = pidvisor.shut_down();
    run.assert_code(0);
    assert_eq!(log_count(&run.stderr, "cannot start"), 0, "{run}");
    assert_eq!(
        // EMFILE's number: its text is the libc's (glibc "Too many open files", musl
        // "No file descriptors available").
        log_count(&run.stderr, "(os error 24)"),
        left_out,
        "{run}"
    );
    for line in run.stderr.lines().filter(|l| l.contains("left out")) {
        assert!(
            line.contains("pipe2") && line.contains("--ulimit nofile="),
            "names the system call and the fix: {line}"
        );
    }
    assert_eq!(
        first.len(),
        running,
        "no service left out started: {first:?}"
    );
    println!("out of descriptors at start: {running} services run, {left_out} left out");
}
