//! Exit codes: pidvisor (as PID 1) exits with its main command's code, every one of
//! 0..=255; with 128+N when the main command died of signal N (standard, crash and
//! real-time signals alike); with 127 when the command does not exist and 126 when it
//! exists but cannot be executed, saying "cannot run '<prog>': ..." on stderr.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use crate::harness::{Launch, PATIENCE, Pidvisor, TempDir};

/// Runs `sh -c SCRIPT` under pidvisor for each script, several at a time, and returns
/// each run's exit code.
fn exit_codes_of(dir: &TempDir, scripts: &[String]) -> Vec<i32> {
    let mut codes = Vec::new();
    for chunk in scripts.chunks(16) {
        let running: Vec<Pidvisor> = chunk
            .iter()
            .map(|script| Launch::pid1(dir, &["sh", "-c", script]).spawn())
            .collect();
        for pidvisor in running {
            codes.push(pidvisor.finish(PATIENCE).code());
        }
    }
    codes
}

#[test]
fn every_exit_code_from_0_to_255_is_passed_through() {
    let dir = TempDir::new("every-exit-code");
    let scripts: Vec<String> = (0..=255).map(|n| format!("exit {n}")).collect();
    let codes = exit_codes_of(&dir, &scripts);
    let wrong: Vec<(i32, i32)> = (0..=255)
        .zip(codes)
        .filter(|(expected, got)| expected != got)
        .collect();
    assert!(wrong.is_empty(), "(expected, got) exit codes: {wrong:?}");
}

#[test]
fn death_by_signal_gives_128_plus_the_signal_number() {
    let dir = TempDir::new("death-by-signal");
    let signals = [
        libc::SIGTERM,
        libc::SIGKILL,
        libc::SIGSEGV,
        libc::SIGUSR1,
        libc::SIGRTMIN() + 2,
    ];
    let scripts: Vec<String> = signals.iter().map(|n| format!("kill -{n} $$")).collect();
    let codes = exit_codes_of(&dir, &scripts);
    let expected: Vec<i32> = signals.iter().map(|n| 128 + n).collect();
    assert_eq!(codes, expected, "for signals {signals:?}");
}

#[test]
fn missing_command_exits_127_and_says_cannot_run() {
    let dir = TempDir::new("missing-command");
    let missing = dir.file("no-such-program");
    for program in [missing.as_str(), "pidvisor-test-no-such-program-in-path"] {
        let run = Launch::pid1(&dir, &[program, "arg"]).run();
        run.assert_code(127);
        assert!(
            run.stderr.contains(&format!("cannot run '{program}': ")),
            "{run}"
        );
    }
}

#[test]
fn non_executable_file_exits_126_and_says_cannot_run() {
    let dir = TempDir::new("not-executable");
    let program = dir.file("not-executable.sh");
    fs::write(&program, "#!/bin/sh\nexit 0\n").expect("write script");
    fs::set_permissions(&program, fs::Permissions::from_mode(0o644)).expect("chmod 644");
    let run = Launch::pid1(&dir, &[program.as_str()]).run();
    run.assert_code(126);
    assert!(
        run.stderr.contains(&format!("cannot run '{program}': ")),
        "{run}"
    );
}
