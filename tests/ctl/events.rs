//! The event stream: `pidvisorctl events` (history, --follow, --json) and the events file,
//! complete and in order after the container has exited.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::thread;

use serde_json::Value;

use crate::harness::{PATIENCE, TempDir, fixture};
use crate::support::{ctl, ctl_command, events_of, read_events, service, start, wait_for_event};

#[test]
fn events_prints_the_history_for_people_and_as_json() {
    let dir = TempDir::new("ctl-events");
    service(&dir, "web", "exec sleep 1000", "");
    let _pidvisor = start(&dir, &[]);
    ctl(&dir, &["wait", "web", "--state", "ready"]).expect(0);
    let json = ctl(&dir, &["events", "--json"]).expect(0);
    let events: Vec<Value> = json
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(kinds, ["started", "ready"], "{}", json.stdout);
    assert_eq!(
        events,
        read_events(&dir),
        "the same lines as the events file"
    );
    for event in &events {
        assert!(event["seq"].is_u64() && event["mono"].is_f64(), "{event}");
        assert!(
            event["wall"].as_str().is_some_and(|w| w.len() == 24),
            "{event}"
        );
    }
    let text = ctl(&dir, &["events"]).expect(0).stdout;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].contains("web") && lines[0].contains("started"),
        "{text}"
    );
    assert!(lines[0].contains("pid="), "{text}");
}

#[test]
fn events_follow_streams_every_new_event_until_pidvisor_exits() {
    let dir = TempDir::new("ctl-follow");
    service(&dir, "web", "exec sleep 1000", "restart-delay = \"10ms\"\n");
    let pidvisor = start(&dir, &[]);
    ctl(&dir, &["wait", "web", "--state", "ready"]).expect(0);
    let mut follower = ctl_command(&dir, &["events", "--follow", "--json"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("pidvisorctl events --follow");
    let stdout = follower.stdout.take().expect("stdout");
    let (lines, received) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    let next = || -> Value {
        let line = received.recv_timeout(PATIENCE).expect("an event line");
        serde_json::from_str(&line).expect("JSON")
    };
    // The history first...
    assert_eq!(next()["event"], "started");
    assert_eq!(next()["event"], "ready");
    // ... then what happens from now on.
    ctl(&dir, &["signal", "web", "KILL"]).expect(0);
    let exited = next();
    assert_eq!(
        (&exited["event"], &exited["signal"]),
        (&"exited".into(), &"SIGKILL".into())
    );
    let scheduled = next();
    assert_eq!(scheduled["event"], "restart_scheduled");
    assert_eq!(scheduled["delay"], 0.01);
    assert_eq!(next()["event"], "started");
    assert_eq!(next()["event"], "ready");
    ctl(&dir, &["shutdown"]).expect(0);
    let rest: Vec<String> = received.iter().collect();
    let kinds: Vec<String> = rest
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).expect("JSON")["event"].to_string())
        .collect();
    assert_eq!(
        kinds,
        ["\"shutdown\"", "\"exited\"", "\"stopped\"", "\"exit\""],
        "{rest:?}"
    );
    let status = follower.wait().expect("follower exits");
    assert!(status.success(), "follower: {status:?}");
    pidvisor.finish(PATIENCE).assert_code(0);
}

#[test]
fn the_events_file_is_complete_and_in_order_after_the_container_exits() {
    let dir = TempDir::new("ctl-events-file");
    // A broken service (a config problem, the first event), a crash loop that gives up,
    // a service that leaves orphans, and a critical one that ends the container.
    service(&dir, "broken", "true", "restart = \"sometimes\"\n");
    service(
        &dir,
        "crash",
        "exit 2",
        "restart-delay = \"1s\"\nmax-restarts = 3\n",
    );
    service(
        &dir,
        "orphans",
        &format!("perl {} 5\nexec sleep 1000", fixture("orphans.pl")),
        "",
    );
    service(
        &dir,
        "last",
        "exec sleep 1000",
        "restart = \"never\"\ncritical = true\n",
    );
    let pidvisor = start(&dir, &[("PIDVISOR_TIME_SCALE", "0.01")]);
    ctl(&dir, &["wait", "crash", "--state", "failed"]).expect(0);
    // The orphans must all be reaped before the end begins: otherwise the shutdown could
    // stop their maker half-way, or reap them after the `shutdown` event.
    wait_for_event(&dir, "the 5 orphans are reaped", |e| {
        e["event"] == "orphans_reaped" && e["total"].as_u64() >= Some(5)
    });
    ctl(&dir, &["signal", "last", "KILL"]).expect(0);
    pidvisor.finish(PATIENCE).assert_code(137);

    let events = read_events(&dir);
    let seqs: Vec<u64> = events.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert_eq!(
        seqs,
        (1..=events.len() as u64).collect::<Vec<_>>(),
        "numbered 1, 2, 3..."
    );
    let monos: Vec<f64> = events.iter().filter_map(|e| e["mono"].as_f64()).collect();
    assert!(
        monos.windows(2).all(|w| w[0] <= w[1]),
        "in time order: {monos:?}"
    );

    assert_eq!(events[0]["event"], "config_problem");
    assert!(
        events[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("sometimes")),
        "{}",
        events[0]
    );
    let crash_kinds: Vec<&str> = events
        .iter()
        .filter(|e| e["service"] == "crash")
        .filter_map(|e| e["event"].as_str())
        .collect();
    let cycle = ["started", "ready", "exited"];
    let mut expected: Vec<&str> = Vec::new();
    for _ in 0..3 {
        expected.extend(cycle);
        expected.push("restart_scheduled");
    }
    expected.extend(cycle);
    expected.push("failed");
    assert_eq!(crash_kinds, expected);
    let delays: Vec<(f64, f64)> = events_of(&events, "crash", "restart_scheduled")
        .iter()
        .map(|e| {
            (
                e["delay"].as_f64().unwrap_or(-1.0),
                e["nominal_delay"].as_f64().unwrap_or(-1.0),
            )
        })
        .collect();
    assert_eq!(delays, [(0.01, 1.0), (0.02, 2.0), (0.04, 4.0)]);

    let orphans: u64 = events
        .iter()
        .filter(|e| e["event"] == "orphans_reaped")
        .filter_map(|e| e["count"].as_u64())
        .sum();
    assert!(orphans >= 5, "orphans reaped: {orphans}");

    let tail: Vec<&str> = events
        .iter()
        .rev()
        .take(4)
        .rev()
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert!(tail.contains(&"shutdown"), "{tail:?}");
    let last = events.last().expect("events");
    assert_eq!(
        (&last["event"], &last["code"]),
        (&"exit".into(), &137.into())
    );
    let kill = events_of(&events, "last", "exited");
    assert_eq!(kill[0]["signal"], "SIGKILL");
    assert_eq!(events_of(&events, "last", "finished").len(), 1);
}
