//! Shutdown: TERM, INT and QUIT are forwarded and start the shutdown; once the main
//! command is gone every remaining process gets SIGTERM and SIGCONT; at the end of the
//! grace time everything left gets SIGKILL, and a second TERM skips straight to it.
//! pidvisor exits the moment no child is left: never a fixed wait. Without a main
//! command it runs until TERM and then exits 0.
//!
//! Every test here bounds the time it takes, so it holds [`timed`] to stay clear of the
//! heavy reaping tests.

use std::fs;
use std::time::{Duration, Instant};

use crate::harness::{Launch, PATIENCE, Pidvisor, TempDir, fixture, python, sh_quote, timed};

/// A main command that ignores TERM (and so do the `sleep`s it starts: an ignored signal
/// stays ignored across exec) and creates READY once it does.
fn stubborn(ready: &str) -> String {
    format!(
        "trap '' TERM INT QUIT; touch {}; while :; do sleep 1; done",
        sh_quote(ready)
    )
}

#[test]
fn stubborn_main_command_is_killed_when_the_grace_time_is_over() {
    let _timed = timed();
    let dir = TempDir::new("grace-over");
    // Once with the flag, once with the environment variable, side by side.
    let ready = [dir.file("READY-flag"), dir.file("READY-env")];
    let mut running: Vec<(Pidvisor, Instant)> = vec![
        (
            Launch::pid1(
                &dir,
                &["--grace", "500ms", "sh", "-c", &stubborn(&ready[0])],
            )
            .start(),
            Instant::now(),
        ),
        (
            Launch::pid1(&dir, &["sh", "-c", &stubborn(&ready[1])])
                .env("PIDVISOR_GRACE", "500ms")
                .start(),
            Instant::now(),
        ),
    ];
    for ((pidvisor, sent), ready) in running.iter_mut().zip(&ready) {
        pidvisor.wait_for_file(ready);
        *sent = Instant::now();
        pidvisor.signal(libc::SIGTERM);
    }
    for (pidvisor, sent) in running {
        let run = pidvisor.finish(PATIENCE);
        let took = run.exited_at - sent;
        run.assert_code(137);
        assert!(took >= Duration::from_millis(500), "took {took:?}\n{run}");
        assert!(took < Duration::from_secs(5), "took {took:?}\n{run}");
        assert!(run.stderr.contains("SIGKILL"), "says SIGKILL\n{run}");
    }
}

#[test]
fn prompt_main_command_makes_sigterm_end_the_container_at_once() {
    let _timed = timed();
    let dir = TempDir::new("prompt-term");
    let ready = dir.file("READY");
    let script = format!("touch {}; exec sleep 1000", sh_quote(&ready));
    // A grace time far above the bound: waiting for it would fail the test, however slow
    // the machine.
    let mut pidvisor = Launch::pid1(&dir, &["--grace", "60s", "sh", "-c", &script]).start();
    pidvisor.wait_for_file(&ready);
    let sent = Instant::now();
    pidvisor.signal(libc::SIGTERM);
    let run = pidvisor.finish(PATIENCE);
    let took = run.exited_at - sent;
    run.assert_code(143);
    assert!(took < Duration::from_secs(10), "took {took:?}\n{run}");
}

#[test]
fn second_sigterm_during_shutdown_kills_at_once() {
    let _timed = timed();
    let dir = TempDir::new("second-term");
    // A recorder that records TERM but does not exit: stubborn, and it shows when
    // pidvisor has taken the first TERM (by forwarding it).
    let outfile = dir.file("signals");
    let recorder = fixture("sigrecorder.py");
    let args = ["--grace", "30s", python(), &recorder, "--no-exit", &outfile];
    let mut pidvisor = Launch::pid1(&dir, &args).start();
    pidvisor.wait_for_file(&format!("{outfile}.ready"));
    let sent = Instant::now();
    pidvisor.signal(libc::SIGTERM);
    // Two TERMs sent back to back may merge into one pending signal: wait until pidvisor
    // has taken the first.
    pidvisor.wait_until("the first SIGTERM has been forwarded", |_| {
        fs::read_to_string(&outfile).is_ok_and(|s| s == "SIGTERM\n")
    });
    pidvisor.signal(libc::SIGTERM);
    let run = pidvisor.finish(PATIENCE);
    let took = run.exited_at - sent;
    run.assert_code(137);
    assert!(
        took < Duration::from_secs(5),
        "took {took:?} of 30s grace\n{run}"
    );
}

#[test]
fn main_command_exit_sweeps_lingering_processes_without_a_fixed_wait() {
    let _timed = timed();
    let dir = TempDir::new("main-exits");
    let started = Instant::now();
    let run = Launch::pid1(&dir, &["--grace", "60s", "sh", "-c", "sleep 1000 & exit 3"]).run();
    let took = run.exited_at - started;
    run.assert_code(3);
    assert!(took < Duration::from_secs(10), "took {took:?}\n{run}");
}

#[test]
fn sweep_sends_sigcont_so_that_stopped_processes_act_on_sigterm() {
    let _timed = timed();
    let dir = TempDir::new("sweep-cont");
    let outfile = dir.file("signals");
    // The main command starts a recorder in the background, waits until it has its
    // handlers and is stopped, then exits 3. A stopped process runs no handler: only
    // the SIGCONT after the sweep's SIGTERM lets it record TERM and exit 0 before the
    // 30 s grace time is over.
    let script = format!(
        "{python} {recorder} {out} & rec=$!; \
         while [ ! -e {out}.ready ]; do sleep 0.01; done; \
         kill -STOP $rec; \
         until grep -q '^State:.*stopped' /proc/$rec/status; do sleep 0.01; done; \
         exit 3",
        python = sh_quote(python()),
        recorder = sh_quote(&fixture("sigrecorder.py")),
        out = sh_quote(&outfile),
    );
    let started = Instant::now();
    let run = Launch::pid1(&dir, &["--grace", "30s", "sh", "-c", &script])
        .spawn()
        .finish(Duration::from_secs(10));
    let took = run.exited_at - started;
    run.assert_code(3);
    let recorded = fs::read_to_string(&outfile).unwrap_or_default();
    assert!(
        recorded.lines().any(|l| l == "SIGTERM"),
        "the stopped recorder handled SIGTERM: {recorded:?}\n{run}"
    );
    assert!(
        took < Duration::from_secs(10),
        "took {took:?} of 30s grace\n{run}"
    );
}

#[test]
fn without_main_command_sigterm_exits_0_at_once() {
    let _timed = timed();
    let dir = TempDir::new("no-main");
    let pidvisor = Launch::pid1(&dir, &["--grace", "60s"]).start();
    let sent = Instant::now();
    pidvisor.signal(libc::SIGTERM);
    let run = pidvisor.finish(PATIENCE);
    let took = run.exited_at - sent;
    run.assert_code(0);
    assert!(took < Duration::from_secs(10), "took {took:?}\n{run}");
}

#[test]
fn sigint_and_sigquit_also_start_the_shutdown() {
    let _timed = timed();
    let dir = TempDir::new("int-quit-shutdown");
    // The main command ignores both, so only the shutdown's grace deadline ends it.
    let cases = [(libc::SIGINT, "SIGINT"), (libc::SIGQUIT, "SIGQUIT")];
    let running: Vec<(Pidvisor, Instant, &str)> = cases
        .iter()
        .map(|&(signo, name)| {
            let ready = dir.file(&format!("READY-{name}"));
            let mut pidvisor =
                Launch::pid1(&dir, &["--grace", "500ms", "sh", "-c", &stubborn(&ready)]).start();
            pidvisor.wait_for_file(&ready);
            let sent = Instant::now();
            pidvisor.signal(signo);
            (pidvisor, sent, name)
        })
        .collect();
    for (pidvisor, sent, name) in running {
        let run = pidvisor.finish(PATIENCE);
        let took = run.exited_at - sent;
        run.assert_code(137);
        assert!(
            took >= Duration::from_millis(500),
            "{name}: took {took:?}\n{run}"
        );
        assert!(
            took < Duration::from_secs(5),
            "{name}: took {took:?}\n{run}"
        );
    }
}
