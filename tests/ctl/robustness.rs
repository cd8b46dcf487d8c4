//! Malformed, oversized and slow requests get a clear error and never hold up the loop or
//! the other clients.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
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

/// Writes `unit` over and over without reading, until `cap` bytes are in or the socket
/// has taken nothing for two seconds (pidvisor stopped reading); returns how much was
/// taken.
fn flood(stream: &UnixStream, unit: &[u8], cap: usize) -> usize {
    stream.set_nonblocking(true).expect("nonblocking");
    let chunk: Vec<u8> = unit.iter().copied().cycle().take(64 * 1024).collect();
    let mut sent = 0;
    while sent < cap {
        match (&*stream).write(&chunk) {
            Ok(n) => sent += n,
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
                let mut poll = libc::pollfd {
                    fd: stream.as_raw_fd(),
                    events: libc::POLLOUT,
                    revents: 0,
                };
                // SAFETY: one valid pollfd.
                if unsafe { libc::poll(&mut poll, 1, 2000) } == 0 {
                    break;
                }
            }
            Err(err) => panic!("flood: {err}"),
        }
    }
    sent
}

/// While a request is in progress (here a wait that never ends), whatever else the client
/// sends waits in the socket: pidvisor stops reading once a complete line is queued,
/// instead of buffering a flood without bound.
#[test]
fn a_busy_client_cannot_make_pidvisor_buffer_without_bound() {
    let dir = TempDir::new("ctl-busy-flood");
    service(&dir, "web", "exec sleep 1000", "");
    let _pidvisor = start(&dir, &[]);
    let mut connection = Connection::open(&dir);
    connection.send(b"{\"cmd\":\"wait\",\"service\":\"web\",\"state\":\"failed\"}\n");
    let cap = 64 * 1024 * 1024;
    let sent = flood(&connection.stream, b"x\n", cap);
    assert!(
        sent < cap / 8,
        "pidvisor took {sent} bytes from a busy client"
    );
    ctl(&dir, &["status"]).expect(0);
}

/// A client that sends requests and never reads the replies cannot make them pile up in
/// pidvisor: the next request waits until the last reply has gone out.
#[test]
fn a_client_that_reads_no_replies_cannot_pile_them_up() {
    let dir = TempDir::new("ctl-reply-flood");
    service(&dir, "web", "exec sleep 1000", "");
    let _pidvisor = start(&dir, &[]);
    let connection = Connection::open(&dir);
    let cap = 4 * 1024 * 1024;
    let sent = flood(&connection.stream, b"{\"cmd\":\"status\"}\n", cap);
    assert!(sent < cap / 2, "pidvisor took {sent} bytes of requests");
    ctl(&dir, &["status"]).expect(0);
}

/// A request sent while a wait is in progress is answered as soon as the wait ends, even
/// when nothing else happens on the socket.
#[test]
fn a_request_queued_behind_a_wait_is_answered_when_the_wait_ends() {
    let dir = TempDir::new("ctl-queued-request");
    service(&dir, "web", "exec sleep 1000", "");
    let _pidvisor = start(&dir, &[]);
    let mut connection = Connection::open(&dir);
    connection.send(
        b"{\"cmd\":\"wait\",\"service\":\"web\",\"state\":\"failed\",\"timeout\":0.2}\n\
          {\"cmd\":\"status\"}\n",
    );
    let first = connection.receive().expect("the wait's reply");
    assert_eq!(first["error"], "timeout", "{first}");
    let started = Instant::now();
    let second = connection.receive().expect("the status reply");
    assert_eq!(second["ok"], true, "{second}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
