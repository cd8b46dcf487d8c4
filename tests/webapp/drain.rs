//! The graceful stop: SIGTERM turns `/health` to 503 at once, the drain keeps serving,
//! then webapp stops accepting, finishes every request in flight and exits 0.

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::{PATIENCE, Webapp, http};

/// Requests in flight, as `/` reports them (this one included).
fn in_flight(webapp: &Webapp) -> u64 {
    let reply = webapp.request("GET", "/", &[("Accept", "application/json")]);
    let doc: serde_json::Value = serde_json::from_str(&reply.body).expect("JSON from /");
    doc["in_flight"].as_u64().expect("in_flight is a number")
}

#[test]
fn sigterm_drains_then_finishes_every_request_in_flight_and_exits_0() {
    const SLOW: u64 = 20;
    let mut webapp = Webapp::start(&["--drain", "3s"]);
    let addr = SocketAddr::from(([127, 0, 0, 1], webapp.addr.port()));
    thread::scope(|scope| {
        // Longer than the drain, so that they are still running when it ends.
        let slow: Vec<_> = (0..SLOW)
            .map(|_| scope.spawn(move || http(addr, "GET", "/slow?ms=6000", &[])))
            .collect();
        let deadline = Instant::now() + PATIENCE;
        while in_flight(&webapp) < SLOW + 1 {
            assert!(
                Instant::now() < deadline,
                "the slow requests never were all in flight"
            );
        }

        webapp.signal(libc::SIGTERM);
        webapp.stderr.wait_for("the SIGTERM line", |line| {
            line.contains("received SIGTERM, draining for 3s")
        });
        let health = webapp.get("/health");
        assert_eq!((health.status, health.body.as_str()), (503, "draining\n"));
        assert_eq!(
            webapp.get("/").status,
            200,
            "still serving during the drain"
        );

        let stop = webapp.stderr.wait_for("the end of the drain", |line| {
            line.contains("stopped accepting")
        });
        assert!(
            stop.contains(&format!("finishing {SLOW} request(s) in flight")),
            "{stop}"
        );
        let deadline = Instant::now() + PATIENCE;
        loop {
            match TcpStream::connect_timeout(&addr, PATIENCE) {
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => break,
                other => assert!(
                    Instant::now() < deadline,
                    "still accepting after the drain: {other:?}"
                ),
            }
        }

        for request in slow {
            let reply = request
                .join()
                .expect("client thread")
                .expect("the slow request");
            assert_eq!(
                (reply.status, reply.body.as_str()),
                (200, "answered after 6000 ms\n")
            );
        }
    });
    assert_eq!(webapp.wait().code(), Some(0));
    let answered = webapp
        .stdout
        .all()
        .iter()
        .filter(|l| l.contains("GET /slow?ms=6000 200 "))
        .count();
    assert_eq!(answered as u64, SLOW, "each slow request logged once");
}

#[test]
fn a_second_signal_cuts_the_drain_short() {
    let mut webapp = Webapp::start(&["--drain", "1h"]);
    webapp.signal(libc::SIGTERM);
    webapp.stderr.wait_for("the SIGTERM line", |line| {
        line.contains("received SIGTERM, draining for 3600s")
    });
    assert_eq!(webapp.get("/health").status, 503);
    webapp.signal(libc::SIGINT);
    // An hour's drain, over well within PATIENCE.
    assert_eq!(webapp.wait().code(), Some(0));
    assert!(
        webapp
            .stderr
            .all()
            .iter()
            .any(|l| l.contains("received SIGINT while draining, stopping now"))
    );
}

#[test]
fn sigint_without_drain_stops_at_once() {
    let mut webapp = Webapp::start(&[]);
    let started = Instant::now();
    webapp.signal(libc::SIGINT);
    assert_eq!(webapp.wait().code(), Some(0));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        webapp
            .stderr
            .all()
            .iter()
            .any(|l| l.contains("received SIGINT, stopping"))
    );
}
