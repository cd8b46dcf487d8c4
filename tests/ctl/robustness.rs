//! Malformed, oversized and slow requests get a clear error and never hold up the loop or
//! the other clients.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use crate::harness::{PATIENCE, TempDir};
use crate::support::{Connection, ctl, service, socket, start};

#[test]
fn malformed_requests_get_an_error_and_the_connection_goes_on() {
    let dir = TempDir::new("ctl-malformed");
    service(&dir, "web", "exec sleep 1000", "");
    let _pidvisor = start(&dir, &[]);
    let mut connection = Connection::open(&dir);
    for (request, error, hint) in [
        ("hello", "bad_request", "not valid JSON"),
        ("[1, 2]", "bad_request", "must be a JSON object"),
        ("{}", "bad_request", "has no \"cmd\""),
        (r#"{"cmd":"reboot"}"#, "bad_request", "unknown variant"),
        (
            r#"{"cmd":"start"}"#,
            "bad_request",
            "missing field `service`",
        ),
        (
            r#"{"v":2,"cmd":"status"}"#,
            "unsupported_version",
            "version 1",
        ),
    ] {
        let reply = connection.ask(request);
        assert_eq!(reply["ok"], false, "{request}: {reply}");
        assert_eq!(reply["v"], 1, "{request}: {reply}");
        assert_eq!(reply["error"], error, "{request}: {reply}");
        assert!(
            reply["message"].as_str().is_some_and(|m| m.contains(hint)),
            "{request}: {reply}"
        );
    }
    connection.send(b"\xff\xfe\n");
    assert_eq!(connection.receive().expect("reply")["error"], "bad_request");
    // Blank lines are ignored; two requests in one write are both answered, in order.
    connection.send(b"\n{\"cmd\":\"status\",\"services\":[\"web\"]}\n{\"cmd\":\"status\"}\n");
    let first = connection.receive().expect("first reply");
    let second = connection.receive().expect("second reply");
    assert_eq!(first["services"][0]["name"], "web");
    assert_eq!(second["ok"], true);
}

#[test]
fn an_oversized_request_is_refused_and_the_connection_closed() {
    let dir = TempDir::new("ctl-oversized");
    let _pidvisor = start(&dir, &[]);
    let mut connection = Connection::open(&dir);
    // No newline in sight after 4 KiB: refused without waiting for the rest. Sent in one
    // go; the server may close before reading it all, so a failed write is fine too.
    let _ = connection.stream.write_all(&[b'x'; 64 * 1024]);
    let reply = connection.receive().expect("an error line");
    assert_eq!(reply["error"], "too_long", "{reply}");
    assert!(
        reply["message"]
            .as_str()
            .is_some_and(|m| m.contains("4096 bytes"))
    );
    assert!(connection.receive().is_none(), "closed after the error");
    // The next client is served as usual.
    ctl(&dir, &["status"]).expect(0);
}

#[test]
fn a_stalled_client_delays_nobody_and_is_closed_after_the_idle_timeout() {
    let dir = TempDir::new("ctl-stalled");
    service(&dir, "web", "exec sleep 1000", "");
    let _pidvisor = start(&dir, &[]);
    // Half a request, then silence; and a client that connects and says nothing.
    let mut stalled = Connection::open(&dir);
    stalled.send(br#"{"cmd":"sta"#);
    let mut silent = UnixStream::connect(socket(&dir)).expect("connect");
    silent.set_read_timeout(Some(PATIENCE)).expect("timeout");
    let opened = Instant::now();
    // Meanwhile the others are answered at once.
    for _ in 0..20 {
        let asked = Instant::now();
        ctl(&dir, &["status", "web"]).expect(0);
        assert!(
            asked.elapsed() < Duration::from_secs(5),
            "status took {:?}",
            asked.elapsed()
        );
    }
    // Both get a clear error once the 10-second idle timeout has passed, then end-of-file.
    let reply = stalled.receive().expect("idle timeout error");
    assert_eq!(reply["error"], "idle_timeout", "{reply}");
    assert!(stalled.receive().is_none());
    let mut text = String::new();
    silent.read_to_string(&mut text).expect("read");
    assert!(text.contains("\"idle_timeout\""), "{text}");
    let waited = opened.elapsed();
    assert!(waited >= Duration::from_secs(9), "closed after {waited:?}");
}

#[test]
fn a_client_that_leaves_mid_wait_is_forgotten() {
    let dir = TempDir::new("ctl-leaves");
    service(&dir, "web", "exec sleep 1000", "");
    let _pidvisor = start(&dir, &[]);
    for _ in 0..10 {
        let mut connection = Connection::open(&dir);
        connection.send(b"{\"cmd\":\"wait\",\"service\":\"web\",\"state\":\"failed\"}\n");
        drop(connection);
    }
    // A half-closed client still gets its answer.
    let mut connection = Connection::open(&dir);
    connection.send(b"{\"cmd\":\"status\"}\n");
    connection
        .stream
        .shutdown(std::net::Shutdown::Write)
        .expect("shutdown");
    assert_eq!(connection.receive().expect("reply")["ok"], true);
    assert!(connection.receive().is_none());
    ctl(&dir, &["status"]).expect(0);
}
