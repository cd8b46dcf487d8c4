//! Clear errors: unknown services, no pidvisor, usage errors, and PIDVISOR_TIME_SCALE out
//! of range.

use std::process::Command;

use crate::harness::{PIDVISOR, TempDir};
use crate::support::{ctl, ctl_command, service, start};

#[test]
fn an_unknown_service_is_named_with_the_ones_that_exist() {
    let dir = TempDir::new("ctl-unknown");
    service(&dir, "web", "exec sleep 1000", "");
    service(&dir, "db", "exec sleep 1000", "");
    let _pidvisor = start(&dir, &[]);
    for args in [
        &["status", "nope"][..],
        &["start", "nope"],
        &["stop", "nope"],
        &["restart", "nope"],
        &["signal", "nope", "HUP"],
        &["wait", "nope", "--state", "ready"],
    ] {
        let run = ctl(&dir, args).expect(1);
        assert_eq!(
            run.stderr.trim(),
            "pidvisorctl: no service named 'nope'; the services are: db, web",
            "{args:?}"
        );
    }
}

#[test]
fn without_pidvisor_the_error_names_the_socket_and_exits_4() {
    let dir = TempDir::new("ctl-no-socket");
    let socket = dir.file("control.sock");
    let run = ctl(&dir, &["status"]).expect(4);
    assert_eq!(
        run.stderr.trim(),
        format!(
            "pidvisorctl: no control socket at {socket}: is pidvisor running? (if it listens \
             elsewhere, set PIDVISOR_SOCKET or --socket)"
        )
    );
    // A socket file nobody listens on (pidvisor was killed).
    let listener = std::os::unix::net::UnixListener::bind(&socket).expect("bind");
    drop(listener);
    let run = ctl(&dir, &["status"]).expect(4);
    assert!(run.stderr.contains("nothing listens on"), "{run:?}");
    // --socket wins over PIDVISOR_SOCKET.
    let elsewhere = dir.file("elsewhere.sock");
    let run = ctl(&dir, &["--socket", &elsewhere, "status"]).expect(4);
    assert!(run.stderr.contains(&elsewhere), "{run:?}");
    // wait gives pidvisor time to come up, within its timeout.
    let run = ctl(
        &dir,
        &["wait", "web", "--state", "ready", "--timeout", "100ms"],
    )
    .expect(4);
    assert!(run.stderr.contains("nothing listens on"), "{run:?}");
}

#[test]
fn usage_errors_exit_2_with_a_reason() {
    let dir = TempDir::new("ctl-usage");
    for (args, reason) in [
        (&[][..], "no command given"),
        (&["frobnicate"], "unknown command 'frobnicate'"),
        (&["start"], "start needs a service name"),
        (&["wait", "web"], "wait needs --state STATE"),
        (&["wait", "web", "--state", "up"], "'up' is not a state"),
        (&["status", "--follow"], "status does not take --follow"),
        (&["stop", "web", "--timeout", "soon"], "--timeout"),
        (&["shutdown", "--exit-code", "300"], "0 to 255"),
    ] {
        let run = ctl(&dir, args).expect(2);
        assert!(run.stderr.starts_with("pidvisorctl: "), "{args:?}: {run:?}");
        assert!(run.stderr.contains(reason), "{args:?}: {run:?}");
        assert!(
            run.stderr.contains("pidvisorctl --help"),
            "{args:?}: {run:?}"
        );
    }
    let help = ctl(&dir, &["--help"]).expect(0);
    assert!(help.stdout.contains("wait NAME --state STATE"), "{help:?}");
    let output = ctl_command(&dir, &["-h"]).output().expect("run");
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("pidvisorctl:"));
}

#[test]
fn time_scale_out_of_range_is_a_usage_error() {
    for bad in ["0", "0.0001", "5000", "-1", "fast", "NaN"] {
        let output = Command::new(PIDVISOR)
            .env("PIDVISOR_TIME_SCALE", bad)
            .arg("true")
            .output()
            .expect("run pidvisor");
        assert_eq!(output.status.code(), Some(2), "{bad}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.starts_with("pidvisor: PIDVISOR_TIME_SCALE: ")
                && stderr.contains("use a factor from 0.001 to 1000"),
            "{bad}: {stderr}"
        );
    }
    let output = Command::new(PIDVISOR)
        .args(["--time-scale", "0", "true"])
        .output()
        .expect("run pidvisor");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
}

#[test]
fn without_a_socket_pidvisor_warns_and_runs_on() {
    let dir = TempDir::new("ctl-no-socket-possible");
    // /proc refuses new folders: the socket cannot be created.
    let run = crate::harness::Launch::pid1(&dir, &["sh", "-c", "exit 6"])
        .env("PIDVISOR_SOCKET", "/proc/pidvisor-test/control.sock")
        .run();
    run.assert_code(6);
    assert!(
        run.log_lines().iter().any(|l| l.starts_with(
            "pidvisor: WARN no control socket, pidvisorctl will not work: creating /proc/pidvisor-test:"
        )),
        "{run}"
    );
}
