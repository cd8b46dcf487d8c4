//! The control socket under abuse: random bytes, a 1 MB line, truncated and deeply nested
//! JSON, thousands of pipelined requests, clients that never read their replies, and
//! hundreds of idle connections, all at once. Each is refused or answered, `pidvisorctl
//! status` keeps answering throughout, and pidvisor's descriptors come back down to what
//! they were once the abusers leave.

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use serde_json::Value;

use crate::harness::{PATIENCE, TempDir, fd_targets, poll_until};
use crate::support::{Connection, ctl, ctl_command, service, socket, start};

/// Runs `pidvisorctl status` over and over until `stop`; returns how many answered, and
/// every run that did not.
fn status_checker(
    dir: &TempDir,
    stop: Arc<AtomicBool>,
) -> thread::JoinHandle<(usize, Vec<String>)> {
    let mut status = ctl_command(dir, &["status", "web"]);
    thread::spawn(move || {
        let (mut answered, mut failures) = (0, Vec::new());
        while !stop.load(Ordering::Relaxed) {
            let run = status.output().expect("running pidvisorctl");
            let stdout = String::from_utf8_lossy(&run.stdout);
            match run.status.success() && stdout.contains("web") {
                true => answered += 1,
                false => failures.push(format!("{run:?}")),
            }
        }
        (answered, failures)
    })
}

/// Every line a connection gets until end-of-file: each must be a JSON refusal.
fn refusals_until_closed(mut stream: UnixStream) -> Vec<Value> {
    stream
        .set_read_timeout(Some(PATIENCE))
        .expect("read timeout");
    let mut text = Vec::new();
    match stream.read_to_end(&mut text) {
        Ok(_) => {}
        Err(err) if err.kind() == ErrorKind::ConnectionReset => {}
        Err(err) => panic!("reading until pidvisor closes: {err}"),
    }
    let text = String::from_utf8(text).expect("UTF-8 replies");
    let replies: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for reply in &replies {
        assert_eq!(reply["ok"], false, "{reply}");
        assert!(reply["error"].is_string(), "{reply}");
    }
    replies
}

/// Deterministic noise (xorshift), newlines included now and then.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

#[test]
fn every_abuse_is_refused_or_answered_and_status_stays_prompt() {
    let dir = TempDir::new("hostile-socket");
    service(&dir, "web", "exec sleep 1000", "");
    let pidvisor = start(&dir, &[]);
    let pid = pidvisor.host_pid();
    // Counted once the service runs: its pipes are pidvisor's for good.
    ctl(&dir, &["wait", "web", "--state", "ready"]).expect(0);
    let before = fd_targets(pid);
    let stop = Arc::new(AtomicBool::new(false));
    let checker = status_checker(&dir, stop.clone());
    let path = socket(&dir);
    let connect = || UnixStream::connect(&path).expect("connect");

    // Hundreds of idle connections, and clients that send requests but never read.
    let idle: Vec<UnixStream> = (0..300).map(|_| connect()).collect();
    let deaf: Vec<UnixStream> = (0..20)
        .map(|_| {
            let stream = connect();
            stream.set_nonblocking(true).expect("non-blocking");
            let request = b"{\"cmd\":\"status\"}\n".repeat(64);
            let mut sent = 0;
            while sent < 4 << 20 {
                match (&stream).write(&request) {
                    Ok(n) => sent += n,
                    Err(err) if err.kind() == ErrorKind::WouldBlock => break,
                    Err(err) => panic!("a deaf client's write: {err}"),
                }
            }
            stream
        })
        .collect();

    // Random bytes: refused line by line, or closed for a line too long.
    for seed in 0..50 {
        let stream = connect();
        let _ = (&stream).write_all(&noise(seed, 8192));
        let _ = stream.shutdown(Shutdown::Write);
        refusals_until_closed(stream);
    }
    // A 1 MB line: too_long, then closed.
    let stream = connect();
    let _ = (&stream).write_all(&vec![b'x'; 1 << 20]);
    let replies = refusals_until_closed(stream);
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(replies[0]["error"], "too_long");
    // Truncated JSON, then end-of-file: nothing to answer, closed.
    let stream = connect();
    (&stream)
        .write_all(br#"{"cmd":"status","services":["we"#)
        .expect("send");
    stream.shutdown(Shutdown::Write).expect("half-close");
    assert_eq!(refusals_until_closed(stream), Vec::<Value>::new());
    // Deeply nested JSON within the line limit: bad_request, and the connection goes on.
    let mut connection = Connection::open(&dir);
    for nested in ["[".repeat(4000), "{\"a\":".repeat(800)] {
        let reply = connection.ask(&nested);
        assert_eq!(reply["error"], "bad_request", "{reply}");
    }
    // Thousands of pipelined requests: every one answered, in order.
    let writer = connection.stream.try_clone().expect("clone");
    let sender = thread::spawn(move || {
        let mut writer = writer;
        for n in 0..5000 {
            let line = format!(
                "{{\"cmd\":\"status\",\"services\":[\"web\"]}}\n{}",
                "\n".repeat(n % 3)
            );
            writer
                .write_all(line.as_bytes())
                .expect("pipelined request");
        }
    });
    for n in 0..5000 {
        let reply = connection.receive().unwrap_or_else(|| panic!("reply {n}"));
        assert_eq!(reply["services"][0]["name"], "web", "reply {n}: {reply}");
    }
    sender.join().expect("sender");

    // With all of that still connected, a new client is still served.
    assert_eq!(ctl(&dir, &["status", "web"]).code, 0);
    stop.store(true, Ordering::Relaxed);
    let (answered, failures) = checker.join().expect("checker");
    assert!(
        failures.is_empty(),
        "{} of {} status runs failed: {failures:#?}",
        failures.len(),
        answered + failures.len()
    );
    assert!(answered > 0);

    drop((idle, deaf, connection));
    poll_until(PATIENCE, "pidvisor's descriptors back down", || {
        let now = fd_targets(pid);
        match now.len() <= before.len() {
            true => Ok(()),
            false => Err(format!("{now:?}, before: {before:?}")),
        }
    });
    let run = pidvisor.shut_down();
    run.assert_code(0);
}
