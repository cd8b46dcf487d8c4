//! Signal forwarding: HUP INT QUIT TERM USR1 USR2 WINCH CONT and the real-time signals
//! sent to pidvisor reach the main command, one by one and in order. By default they go
//! to the main command's whole process group; with `--forward-to pid` (or
//! `PIDVISOR_FORWARD_TO=pid`) only to the main command itself. With `--rewrite FROM:TO`
//! (or `PIDVISOR_REWRITE`) the main command gets TO in place of FROM, or nothing for TO 0.
//!
//! The main command is `tests/fixtures/sigrecorder.py`, which appends the name of every
//! signal it gets to a file and exits 0 after TERM, INT or QUIT.

use std::fs;

use crate::harness::{Launch, PATIENCE, Pidvisor, TempDir, fixture, python};

fn recorded(path: &str) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Starts pidvisor with a recorder writing to `outfile` and waits until the recorder
/// (and, with `child_outfile`, its child) has installed its handlers.
fn start_recorder(
    dir: &TempDir,
    options: &[&str],
    outfile: &str,
    child_outfile: Option<&str>,
) -> Pidvisor {
    let recorder = fixture("sigrecorder.py");
    let mut args: Vec<&str> = options.to_vec();
    args.extend(["--", python(), &recorder]);
    if let Some(child_outfile) = child_outfile {
        args.extend(["--spawn-child", child_outfile]);
    }
    args.push(outfile);
    let mut pidvisor = Launch::pid1(dir, &args).start();
    pidvisor.wait_for_file(&format!("{outfile}.ready"));
    if let Some(child_outfile) = child_outfile {
        pidvisor.wait_for_file(&format!("{child_outfile}.ready"));
    }
    pidvisor
}

/// Sends `signo` to pidvisor and waits until the recorder has written `expected` lines.
fn send_and_await(pidvisor: &mut Pidvisor, signo: libc::c_int, outfile: &str, expected: &[&str]) {
    pidvisor.signal(signo);
    pidvisor.wait_until(
        &format!("{outfile} holds {expected:?} (after signal {signo})"),
        |_| recorded(outfile) == expected,
    );
}

#[test]
fn non_shutdown_signals_reach_the_main_command_in_order() {
    let dir = TempDir::new("forward-in-order");
    let outfile = dir.file("signals");
    let mut pidvisor = start_recorder(&dir, &[], &outfile, None);

    let sequence = [
        (libc::SIGHUP, "SIGHUP"),
        (libc::SIGUSR1, "SIGUSR1"),
        (libc::SIGUSR2, "SIGUSR2"),
        (libc::SIGWINCH, "SIGWINCH"),
        (libc::SIGCONT, "SIGCONT"),
        // SIGRTMAX-1 is 63 in every libc; SIGRTMIN differs (glibc 34, musl 35), and the
        // recorder (python, glibc) and this test (the build's libc) must agree.
        (libc::SIGRTMAX() - 1, "SIGRTMAX-1"),
        // Twice, to show that a signal is forwarded every time, not once.
        (libc::SIGUSR1, "SIGUSR1"),
        (libc::SIGTERM, "SIGTERM"),
    ];
    let mut expected = Vec::new();
    for (signo, name) in sequence {
        expected.push(name);
        send_and_await(&mut pidvisor, signo, &outfile, &expected);
    }
    // The recorder exits 0 after TERM, and pidvisor with it.
    pidvisor.finish(PATIENCE).assert_code(0);
    assert_eq!(recorded(&outfile), expected, "nothing after TERM");
}

#[test]
fn int_quit_and_term_are_forwarded_before_shutting_down() {
    let dir = TempDir::new("forward-shutdown-signals");
    let cases = [
        (libc::SIGINT, "SIGINT"),
        (libc::SIGQUIT, "SIGQUIT"),
        (libc::SIGTERM, "SIGTERM"),
    ];
    // Each signal starts a shutdown, so each gets a pidvisor of its own.
    let runs: Vec<(Pidvisor, String, &str)> = cases
        .iter()
        .map(|&(signo, name)| {
            let outfile = dir.file(name);
            let pidvisor = start_recorder(&dir, &[], &outfile, None);
            pidvisor.signal(signo);
            (pidvisor, outfile, name)
        })
        .collect();
    for (pidvisor, outfile, name) in runs {
        let run = pidvisor.finish(PATIENCE);
        run.assert_code(0);
        assert_eq!(recorded(&outfile), [name], "{run}");
    }
}

#[test]
fn by_default_signals_reach_the_main_commands_whole_process_group() {
    let dir = TempDir::new("forward-to-group");
    let parent = dir.file("parent");
    let child = dir.file("child");
    let mut pidvisor = start_recorder(&dir, &[], &parent, Some(&child));

    pidvisor.signal(libc::SIGUSR1);
    pidvisor.wait_until("both recorders got SIGUSR1", |_| {
        recorded(&parent) == ["SIGUSR1"] && recorded(&child) == ["SIGUSR1"]
    });
    pidvisor.signal(libc::SIGTERM);
    let run = pidvisor.finish(PATIENCE);
    run.assert_code(0);
    assert_eq!(recorded(&parent), ["SIGUSR1", "SIGTERM"], "{run}");
    assert_eq!(
        recorded(&child).first().map(String::as_str),
        Some("SIGUSR1"),
        "{run}"
    );
    assert!(recorded(&child).contains(&"SIGTERM".to_owned()), "{run}");
}

#[test]
fn forward_to_pid_reaches_the_main_command_only() {
    let dir = TempDir::new("forward-to-pid");
    // Once from the flag, once from the environment variable.
    let flag = (dir.file("flag-parent"), dir.file("flag-child"));
    let env = (dir.file("env-parent"), dir.file("env-child"));
    let started = [
        start_recorder(&dir, &["--forward-to", "pid"], &flag.0, Some(&flag.1)),
        {
            let recorder = fixture("sigrecorder.py");
            let args = [python(), &recorder, "--spawn-child", &env.1, &env.0];
            let mut pidvisor = Launch::pid1(&dir, &args)
                .env("PIDVISOR_FORWARD_TO", "pid")
                .start();
            pidvisor.wait_for_file(&format!("{}.ready", env.0));
            pidvisor.wait_for_file(&format!("{}.ready", env.1));
            pidvisor
        },
    ];
    for (mut pidvisor, (parent, child)) in started.into_iter().zip([flag, env]) {
        pidvisor.signal(libc::SIGUSR1);
        pidvisor.wait_until("the main command got SIGUSR1", |_| {
            recorded(&parent) == ["SIGUSR1"]
        });
        // TERM reaches the parent only; when it has exited, the shutdown sweep sends
        // SIGTERM (and SIGCONT) to the child, which records it and exits. Had USR1
        // reached the child, it would have been recorded long before.
        pidvisor.signal(libc::SIGTERM);
        let run = pidvisor.finish(PATIENCE);
        run.assert_code(0);
        assert_eq!(recorded(&parent), ["SIGUSR1", "SIGTERM"], "{run}");
        let child_got = recorded(&child);
        assert!(
            child_got.contains(&"SIGTERM".to_owned()),
            "the sweep reached the child: {child_got:?}\n{run}"
        );
        assert!(
            !child_got.contains(&"SIGUSR1".to_owned()),
            "USR1 must not reach the child: {child_got:?}\n{run}"
        );
    }
}

#[test]
fn rewritten_signals_reach_the_main_command_as_their_replacement_or_not_at_all() {
    let dir = TempDir::new("rewrite");
    let outfile = dir.file("signals");
    // TERM becomes QUIT (nginx's graceful stop) and still shuts pidvisor down; USR1 is
    // dropped; HUP becomes USR2.
    let options = ["--rewrite", "TERM:QUIT,USR1:0", "--rewrite", "HUP:USR2"];
    let mut pidvisor = start_recorder(&dir, &options, &outfile, None);
    pidvisor.signal(libc::SIGUSR1);
    // Forwarded in order: had USR1 been passed on, it would be recorded before USR2.
    send_and_await(&mut pidvisor, libc::SIGHUP, &outfile, &["SIGUSR2"]);
    pidvisor.signal(libc::SIGTERM);
    let run = pidvisor.finish(PATIENCE);
    run.assert_code(0);
    assert_eq!(recorded(&outfile), ["SIGUSR2", "SIGQUIT"], "{run}");
}
