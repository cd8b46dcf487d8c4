//! `pidvisorctl health` and `ping`: exit 0 for yes, 1 for anything else, one line per
//! service that is not ready, and never a hang.

use std::time::{Duration, Instant};

use crate::harness::TempDir;
use crate::support::{ctl, service, start, wait_for_event};

#[test]
fn health_is_yes_once_every_wanted_service_is_ready_and_says_why_not_before() {
    let dir = TempDir::new("health-why");
    service(&dir, "web", "exec sleep 1000", "");
    service(
        &dir,
        "flaky",
        "exit 4",
        "restart-delay = \"1h\"\nrestart-delay-max = \"2h\"\n",
    );
    // Never ready by itself: its readiness file is made by the test.
    service(
        &dir,
        "slow",
        "exec sleep 1000",
        "ready = { command = \"test -e ready-now\" }\nready-timeout = \"1h\"\n",
    );
    service(&dir, "parked", "exec sleep 1000", "");
    std::fs::write(dir.path().join("services.d/parked/down"), "").expect("down file");
    let _pidvisor = start(&dir, &[]);
    wait_for_event(&dir, "flaky is in backoff", |e| {
        e["service"] == "flaky" && e["event"] == "restart_scheduled"
    });

    let run = ctl(&dir, &["health"]).expect(1);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("flaky: backoff after exit code 4")),
        "{run:?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("slow: starting for")),
        "{run:?}"
    );
    // Ready ones and unwanted ones are not listed.
    assert_eq!(lines.len(), 2, "{run:?}");

    // Named services: only those count, wanted or not.
    ctl(&dir, &["health", "web"]).expect(0);
    let parked = ctl(&dir, &["health", "web", "parked"]).expect(1);
    assert_eq!(parked.stdout.trim(), "parked: down (stopped)", "{parked:?}");
    let unknown = ctl(&dir, &["health", "nosuch"]).expect(1);
    assert!(
        unknown.stderr.contains("no service named 'nosuch'"),
        "{unknown:?}"
    );

    ctl(&dir, &["stop", "flaky"]).expect(0);
    std::fs::write(dir.path().join("services.d/slow/ready-now"), "").expect("ready file");
    wait_for_event(&dir, "slow is ready", |e| {
        e["service"] == "slow" && e["event"] == "ready"
    });
    let run = ctl(&dir, &["health"]).expect(0);
    assert_eq!(run.stdout.trim(), "healthy", "{run:?}");
    let json = ctl(&dir, &["health", "--json"]).expect(0).json();
    assert_eq!(json["healthy"], true);
    assert_eq!(json["stage"], "up");
    assert_eq!(json["problems"].as_array().map(Vec::len), Some(0));
}

#[test]
fn ping_answers_while_the_loop_runs() {
    let dir = TempDir::new("health-ping");
    let _pidvisor = start(&dir, &[]);
    let run = ctl(&dir, &["ping"]).expect(0);
    assert_eq!(run.stdout.trim(), "pidvisor: up", "{run:?}");
    assert!(
        ctl(&dir, &["ping", "web"])
            .expect(2)
            .stderr
            .contains("no service name")
    );
}

#[test]
fn a_stopped_pidvisor_makes_health_and_ping_fail_within_their_timeout_not_hang() {
    let dir = TempDir::new("health-stopped");
    service(&dir, "web", "exec sleep 1000", "");
    let pidvisor = start(&dir, &[]);
    ctl(&dir, &["health"]).expect(0);
    pidvisor.signal(libc::SIGSTOP);
    for args in [
        &["health", "--timeout", "300ms"][..],
        &["ping", "--timeout=300ms"],
    ] {
        let began = Instant::now();
        let run = ctl(&dir, args);
        let took = began.elapsed();
        assert_eq!(run.code, 1, "{args:?}: {run:?}");
        assert!(run.stderr.contains("did not answer"), "{args:?}: {run:?}");
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(20),
            "{args:?} took {took:?}"
        );
    }
    pidvisor.signal(libc::SIGCONT);
    ctl(&dir, &["ping"]).expect(0);
}

#[test]
fn no_pidvisor_at_all_is_a_no_not_a_usage_error() {
    let dir = TempDir::new("health-none");
    for args in [&["health"][..], &["ping"]] {
        let run = ctl(&dir, args).expect(1);
        assert!(run.stderr.contains("no control socket"), "{run:?}");
    }
}
