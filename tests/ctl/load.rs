//! 50 clients at once while services crash-loop: every follower sees every event, in
//! order, and no restart comes later than its backoff says (beyond a generous margin),
//! since the one event loop never waits for a client.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Instant;

use serde_json::Value;

use crate::harness::{PATIENCE, TempDir, poll_until, timed};
use crate::support::{Connection, ctl, read_events, service, start};

const FOLLOWERS: usize = 10;
const POLLERS: usize = 40;
const REQUESTS_EACH: usize = 25;
/// Restarts to see while the clients are busy.
const RESTARTS: usize = 60;
/// How late a restart may be. Generous: the machine is shared, and the point is that it
/// is not delayed by the clients' 1000 requests (which would add up to seconds).
const MARGIN: f64 = 0.5;

fn wait_for_event_count(dir: &TempDir, kind: &str, count: usize) {
    poll_until(PATIENCE, format!("{count} {kind} events"), || {
        let seen = read_events(dir)
            .iter()
            .filter(|e| e["event"] == kind)
            .count();
        if seen >= count {
            Ok(())
        } else {
            Err(format!("{seen}"))
        }
    });
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

#[test]
fn fifty_clients_during_crash_loops_miss_no_event_and_delay_no_restart() {
    let _timed = timed();
    let dir = TempDir::new("ctl-load");
    for name in ["a", "b", "c"] {
        service(
            &dir,
            name,
            "exit 1",
            "restart-delay = \"1s\"\nrestart-delay-max = \"4s\"\nmax-restarts = 0\n",
        );
    }
    let pidvisor = start(&dir, &[("PIDVISOR_TIME_SCALE", "0.01")]);

    let followers: Vec<_> = (0..FOLLOWERS)
        .map(|_| {
            let mut connection = Connection::open(&dir);
            thread::spawn(move || {
                let header = connection.ask(r#"{"cmd":"events","follow":true}"#);
                assert_eq!(header["ok"], true, "{header}");
                let mut events = Vec::new();
                while let Some(event) = connection.receive() {
                    events.push(event);
                }
                events
            })
        })
        .collect();
    let enough = Arc::new(AtomicBool::new(false));
    let pollers: Vec<_> = (0..POLLERS)
        .map(|_| {
            let dir_path = dir.path().to_owned();
            let enough = Arc::clone(&enough);
            thread::spawn(move || {
                let mut latencies = Vec::new();
                while latencies.len() < REQUESTS_EACH || !enough.load(Ordering::Relaxed) {
                    let socket = dir_path.join("control.sock");
                    let asked = Instant::now();
                    let mut connection = Connection::open_path(&socket);
                    let reply = connection.ask(r#"{"cmd":"status"}"#);
                    latencies.push(asked.elapsed().as_secs_f64());
                    assert_eq!(reply["ok"], true, "{reply}");
                    assert_eq!(reply["services"].as_array().map(Vec::len), Some(3));
                }
                latencies
            })
        })
        .collect();
    // The clients keep at it until the services have crash-looped a good while.
    wait_for_event_count(&dir, "restart_scheduled", RESTARTS);
    enough.store(true, Ordering::Relaxed);
    let mut latencies: Vec<f64> = pollers
        .into_iter()
        .flat_map(|p| p.join().expect("poller"))
        .collect();
    ctl(&dir, &["shutdown"]).expect(0);
    pidvisor.finish(PATIENCE).assert_code(0);

    let all = read_events(&dir);
    let last = all.last().expect("events");
    assert_eq!(last["event"], "exit");
    for follower in followers {
        let seen: Vec<Value> = follower.join().expect("follower");
        let first = seen
            .first()
            .and_then(|e| e["seq"].as_u64())
            .expect("events");
        let expected: Vec<&Value> = all.iter().skip(first as usize - 1).collect();
        assert_eq!(
            seen.len(),
            expected.len(),
            "a follower saw {} events from #{first}, the file has {}",
            seen.len(),
            expected.len()
        );
        assert!(
            seen.iter().zip(expected).all(|(a, b)| a == b),
            "same events, same order"
        );
    }

    // Each restart: started no earlier than its delay, and not later than the margin.
    let mut lateness = Vec::new();
    for name in ["a", "b", "c"] {
        let mine: Vec<&Value> = all
            .iter()
            .filter(|e| {
                e["service"] == name
                    && (e["event"] == "restart_scheduled" || e["event"] == "started")
            })
            .collect();
        for pair in mine.windows(2) {
            if pair[0]["event"] == "restart_scheduled" && pair[1]["event"] == "started" {
                let due = pair[0]["due"].as_f64().unwrap_or(0.0);
                lateness.push(pair[1]["mono"].as_f64().unwrap_or(0.0) - due);
            }
        }
    }
    assert!(
        lateness.len() >= RESTARTS - 3,
        "only {} restarts",
        lateness.len()
    );
    let worst = lateness.iter().copied().fold(f64::MIN, f64::max);
    let earliest = lateness.iter().copied().fold(f64::MAX, f64::min);
    assert!(earliest > -0.000_01, "a restart came {earliest}s early");
    assert!(worst < MARGIN, "a restart came {worst}s late");
    eprintln!(
        "{} status requests by {POLLERS} clients + {FOLLOWERS} followers, {} events: status \
         median {:.2} ms, max {:.2} ms; restarts late by median {:.3} ms, max {:.3} ms",
        latencies.len(),
        all.len(),
        median(&mut latencies) * 1e3,
        latencies.iter().copied().fold(0.0, f64::max) * 1e3,
        median(&mut lateness) * 1e3,
        worst * 1e3,
    );
}
