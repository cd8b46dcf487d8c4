//! A signal flood to PID 1: SIGUSR1 (which coalesces while pending) and a real-time signal
//! (which queues, one entry each), sent as fast as two threads can, at least tens of
//! thousands of each and for as long as the test runs `pidvisorctl status` five times.
//! pidvisor forwards them to its service, answers every status during the flood (it reads
//! the signalfd in bounded slices between its other work), and is still there, with the
//! same service run, afterwards.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use crate::harness::TempDir;
use crate::support::{ctl, ctl_command, service, start, status};

/// Each sender sends at least this many, and goes on while the status runs last.
const SIGNALS_PER_THREAD: usize = 25_000;
/// Status runs during the flood.
const STATUS_RUNS: usize = 5;

#[test]
fn tens_of_thousands_of_signals_leave_pidvisor_responsive() {
    let dir = TempDir::new("hostile-signal-flood");
    let realtime = libc::SIGRTMIN() + 1;
    // It ignores both signals (ignored dispositions survive exec), and says so with a
    // file: a signal that came before its `trap` would end it.
    let trapped = dir.file("trapped");
    service(
        &dir,
        "web",
        &format!("trap '' USR1 {realtime}\n: > {trapped}\nexec sleep 1000"),
        "",
    );
    let mut pidvisor = start(&dir, &[]);
    pidvisor.wait_for_file(&trapped);
    let before = status(&dir, "web");
    let pid = pidvisor.host_pid();

    let flooding = Arc::new(AtomicBool::new(true));
    let floods: Vec<_> = [libc::SIGUSR1, realtime]
        .into_iter()
        .map(|signo| {
            let flooding = flooding.clone();
            thread::spawn(move || {
                let mut sent = 0;
                while sent < SIGNALS_PER_THREAD || flooding.load(Ordering::Relaxed) {
                    // SAFETY: kill has no memory-safety preconditions.
                    match unsafe { libc::kill(pid, signo) } {
                        0 => sent += 1,
                        // The real-time queue is full (RLIMIT_SIGPENDING): try the next.
                        _ => thread::yield_now(),
                    }
                }
                sent
            })
        })
        .collect();
    let mut status_run = ctl_command(&dir, &["status", "web"]);
    let runs: Vec<_> = (0..STATUS_RUNS)
        .map(|_| status_run.output().expect("running pidvisorctl"))
        .collect();
    flooding.store(false, Ordering::Relaxed);
    let sent: Vec<usize> = floods
        .into_iter()
        .map(|f| f.join().expect("flood"))
        .collect();
    for run in &runs {
        assert!(run.status.success(), "status during the flood: {run:?}");
    }
    assert!(
        sent.iter().all(|&n| n >= SIGNALS_PER_THREAD),
        "sent: {sent:?}"
    );

    let after = status(&dir, "web");
    assert_eq!(after["pid"], before["pid"], "{after}");
    assert_eq!(after["restarts"], 0, "{after}");
    ctl(&dir, &["status"]).expect(0);
    let run = pidvisor.shut_down();
    run.assert_code(0);
    eprintln!("sent {sent:?} (SIGUSR1, SIGRTMIN+1) during {STATUS_RUNS} status runs");
}
