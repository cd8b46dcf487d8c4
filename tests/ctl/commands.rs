//! Every pidvisorctl command against a live pidvisor: what it does, what it prints, and
//! its exit code.

use std::path::Path;

use serde_json::Value;

use crate::harness::{Launch, PATIENCE, TempDir, fixture, python};
use crate::support::{ctl, events_of, read_events, service, socket, start, status, wait_for_event};

#[test]
fn status_shows_state_pid_uptime_restarts_last_exit_and_next_restart() {
    let dir = TempDir::new("ctl-status");
    service(&dir, "web", "exec sleep 1000", "");
    service(
        &dir,
        "flaky",
        "exit 4",
        "restart-delay = \"1h\"\nrestart-delay-max = \"2h\"\n",
    );
    service(&dir, "parked", "exec sleep 1000", "");
    std::fs::write(dir.path().join("services.d/parked/down"), "").expect("down file");
    let pidvisor = start(&dir, &[]);
    wait_for_event(&dir, "flaky is in backoff", |e| {
        e["service"] == "flaky" && e["event"] == "restart_scheduled"
    });

    let web = status(&dir, "web");
    assert_eq!(web["state"], "ready");
    assert!(web["pid"].as_i64().is_some_and(|p| p > 1), "{web}");
    assert!(web["uptime"].as_f64().is_some_and(|u| u >= 0.0), "{web}");
    assert_eq!(web["restarts"], 0);
    assert_eq!(web["last_exit"], Value::Null);
    assert_eq!(web["wanted"], true);

    let flaky = status(&dir, "flaky");
    assert_eq!(flaky["state"], "backoff");
    assert_eq!(flaky["pid"], Value::Null);
    assert_eq!(flaky["restarts"], 1);
    assert_eq!(flaky["last_exit"]["code"], 4);
    assert_eq!(flaky["last_exit"]["signal"], Value::Null);
    assert!(
        flaky["last_exit"]["at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    let next = flaky["next_restart_in"].as_f64().expect("next_restart_in");
    assert!(next > 3000.0 && next <= 3600.0, "{flaky}");

    let parked = status(&dir, "parked");
    assert_eq!(parked["state"], "down");
    assert_eq!(parked["wanted"], false);

    // All services, in a table for people.
    let table = ctl(&dir, &["status"]).expect(0).stdout;
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("NAME") && lines[0].contains("RESTARTS"),
        "{table}"
    );
    assert_eq!(lines.len(), 4, "{table}");
    let flaky_row = lines
        .iter()
        .find(|l| l.starts_with("flaky"))
        .expect("flaky row");
    assert!(
        flaky_row.contains("backoff") && flaky_row.contains("code 4"),
        "{table}"
    );
    assert!(
        flaky_row.contains("in 59m") || flaky_row.contains("in 1h"),
        "{table}"
    );
    let all = ctl(&dir, &["status", "--json"]).expect(0).json();
    let names: Vec<&str> = all["services"]
        .as_array()
        .expect("services")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, ["flaky", "parked", "web"]);
    drop(pidvisor);
}

#[test]
fn stop_keeps_a_service_down_whatever_its_policy_until_start() {
    let dir = TempDir::new("ctl-stop-start");
    service(&dir, "web", "exec sleep 1000", "restart = \"always\"\n");
    let pidvisor = start(&dir, &[]);
    ctl(&dir, &["wait", "web", "--state", "ready"]).expect(0);
    let first = status(&dir, "web")["pid"].as_i64().expect("pid") as i32;

    let stopped = ctl(&dir, &["stop", "web"]).expect(0);
    assert_eq!(stopped.stdout.trim(), "web: down");
    let events = read_events(&dir);
    let exited = events_of(&events, "web", "exited");
    assert_eq!(exited.len(), 1, "the stopped run is gone");
    assert_eq!(exited[0]["signal"], "SIGTERM");
    let web = status(&dir, "web");
    assert_eq!(
        (web["state"].as_str(), web["wanted"].as_bool()),
        (Some("down"), Some(false))
    );
    // Stopping again is fine and immediate.
    ctl(&dir, &["stop", "web"]).expect(0);
    // Down means down: nothing started it again (the loop went round meanwhile, since a
    // status request is served by it).
    assert_eq!(status(&dir, "web")["state"], "down");
    let events = read_events(&dir);
    assert_eq!(events_of(&events, "web", "started").len(), 1);
    assert_eq!(events_of(&events, "web", "stopped").len(), 1);

    let started = ctl(&dir, &["start", "web"]).expect(0);
    assert!(
        started.stdout.starts_with("web: ready (pid "),
        "{started:?}"
    );
    let second = status(&dir, "web")["pid"].as_i64().expect("pid");
    assert_ne!(second, i64::from(first));
    // Starting a ready service is a no-op that succeeds.
    ctl(&dir, &["start", "web", "--json"]).expect(0);

    pidvisor.signal(libc::SIGTERM);
    pidvisor.finish(PATIENCE).assert_code(0);
}

#[test]
fn restart_waits_until_a_new_run_is_ready() {
    let dir = TempDir::new("ctl-restart");
    service(
        &dir,
        "web",
        "sleep 0.2; echo >&3; exec sleep 1000",
        "ready = { notify-fd = 3 }\n",
    );
    let pidvisor = start(&dir, &[]);
    ctl(&dir, &["wait", "web", "--state", "ready"]).expect(0);
    let before = status(&dir, "web")["pid"].as_i64().expect("pid");
    let run = ctl(&dir, &["restart", "web", "--json"]).expect(0);
    let reply = run.json();
    assert_eq!(reply["state"], "ready");
    assert_ne!(reply["pid"].as_i64(), Some(before));
    assert_eq!(status(&dir, "web")["pid"], reply["pid"]);
    // A restart by hand is not a crash: the restart policy's count is untouched.
    assert_eq!(status(&dir, "web")["restarts"], 0);
    pidvisor.signal(libc::SIGTERM);
    pidvisor.finish(PATIENCE).assert_code(0);
}

#[test]
fn start_reports_a_service_that_fails_instead_of_becoming_ready() {
    let dir = TempDir::new("ctl-start-fails");
    // Never ready: it exits before saying so on its notification fd.
    service(
        &dir,
        "broken",
        "exit 9",
        "restart-delay = \"10ms\"\nmax-restarts = 2\nready = { notify-fd = 3 }\n",
    );
    let _pidvisor = start(&dir, &[]);
    ctl(&dir, &["wait", "broken", "--state", "failed"]).expect(0);
    // start forgives the failures, tries again, and says how it ended.
    let run = ctl(&dir, &["start", "broken"]).expect(1);
    assert!(run.stderr.contains("broken: it failed"), "{run:?}");
    let run = ctl(&dir, &["start", "broken", "--json"]).expect(1);
    assert!(run.stderr.contains("gave up after"), "{run:?}");
}

#[test]
fn signal_goes_to_the_service_and_wait_sees_the_restart() {
    let dir = TempDir::new("ctl-signal");
    let marker = dir.file("got-hup");
    service(
        &dir,
        "web",
        &format!(
            "trap 'touch {marker}' HUP\ntrap 'exit 5' USR2\necho >&3; exec 3>&-\nwhile :; do sleep 0.05; done"
        ),
        "ready = { notify-fd = 3 }\nrestart-delay = \"20ms\"\n",
    );
    let _pidvisor = start(&dir, &[]);
    ctl(&dir, &["wait", "web", "--state", "ready"]).expect(0);
    let run = ctl(&dir, &["signal", "web", "HUP"]).expect(0);
    assert!(
        run.stdout.starts_with("web: sent SIGHUP to pid "),
        "{run:?}"
    );
    crate::harness::wait_until(PATIENCE, "the service got SIGHUP", || {
        Path::new(&marker).exists()
    });
    assert_eq!(status(&dir, "web")["state"], "ready", "HUP did not stop it");

    ctl(&dir, &["signal", "web", "SIGUSR2"]).expect(0);
    let run = ctl(
        &dir,
        &[
            "wait",
            "web",
            "--state",
            "ready",
            "--restarts",
            "1",
            "--json",
        ],
    )
    .expect(0);
    assert_eq!(run.json()["restarts"], 1);
    let events = read_events(&dir);
    let exited = events_of(&events, "web", "exited");
    assert_eq!(exited.len(), 1);
    assert_eq!(exited[0]["code"], 5);

    // Signal names and numbers as in service.toml; nonsense and idle services refused.
    ctl(&dir, &["signal", "web", "1"]).expect(0);
    let run = ctl(&dir, &["signal", "web", "SIGBOGUS"]).expect(1);
    assert!(run.stderr.contains("'SIGBOGUS' is not a signal"), "{run:?}");
    ctl(&dir, &["stop", "web"]).expect(0);
    let run = ctl(&dir, &["signal", "web", "HUP"]).expect(1);
    assert!(
        run.stderr.contains("web is down: no process to signal"),
        "{run:?}"
    );
}

#[test]
fn wait_times_out_with_exit_code_3_and_says_where_the_service_is() {
    let dir = TempDir::new("ctl-wait-timeout");
    service(&dir, "web", "exec sleep 1000", "");
    let _pidvisor = start(&dir, &[]);
    let run = ctl(
        &dir,
        &["wait", "web", "--state", "failed", "--timeout", "200ms"],
    )
    .expect(3);
    assert!(
        run.stderr.contains("web is ready, not failed, after 200ms"),
        "{run:?}"
    );
    let run = ctl(&dir, &["stop", "web", "--timeout", "10s"]).expect(0);
    assert_eq!(run.stdout.trim(), "web: down");
    ctl(&dir, &["wait", "web", "--state", "down", "--timeout", "0"]).expect(0);
}

#[test]
fn shutdown_stops_the_container_with_the_exit_code_asked_for() {
    let dir = TempDir::new("ctl-shutdown");
    service(&dir, "web", "exec sleep 1000", "");
    let pidvisor = start(&dir, &[]);
    ctl(&dir, &["wait", "web", "--state", "ready"]).expect(0);
    let run = ctl(&dir, &["shutdown", "--exit-code", "7"]).expect(0);
    assert_eq!(run.stdout.trim(), "pidvisor: shutting down");
    let run = pidvisor.finish(PATIENCE);
    run.assert_code(7);
    assert!(
        !dir.path().join("control.sock").exists(),
        "the socket is removed at exit"
    );
    let events = read_events(&dir);
    assert_eq!(
        events.last().map(|e| e["event"].clone()),
        Some("exit".into())
    );
    assert_eq!(events.last().map(|e| e["code"].clone()), Some(7.into()));
}

#[test]
fn shutdown_stops_the_main_command_with_its_rewritten_signal() {
    let dir = TempDir::new("ctl-shutdown-rewrite");
    let outfile = dir.file("signals");
    let recorder = fixture("sigrecorder.py");
    let mut pidvisor = Launch::pid1(&dir, &[python(), &recorder, &outfile])
        .env("PIDVISOR_REWRITE", "TERM:INT")
        .env("PIDVISOR_SOCKET", &socket(&dir))
        .start();
    pidvisor.wait_for_file(&format!("{outfile}.ready"));
    ctl(&dir, &["shutdown", "--exit-code", "5"]).expect(0);
    let run = pidvisor.finish(PATIENCE);
    run.assert_code(5);
    let recorded = std::fs::read_to_string(&outfile).unwrap_or_default();
    assert_eq!(recorded.lines().collect::<Vec<_>>(), ["SIGINT"], "{run}");
}

#[test]
fn shutdown_without_exit_code_exits_like_sigterm() {
    let dir = TempDir::new("ctl-shutdown-main");
    let pidvisor = start(&dir, &[]);
    ctl(&dir, &["shutdown"]).expect(0);
    pidvisor.finish(PATIENCE).assert_code(0);
}
