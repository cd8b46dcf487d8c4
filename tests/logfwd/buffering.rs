//! While the collector is unreachable: a bounded buffer that drops the oldest lines and
//! says exactly how many (in a log line and to the collector once it is back); at end of
//! input or SIGTERM, a flush bounded by `--flush-timeout`, then exit 0.

use std::io::Write;
use std::net::TcpListener;
use std::thread;
use std::time::Duration;

use crate::collector::Rsyslog;
use crate::process::Logfwd;
use crate::support::{PATIENCE, TempDir, free_port, numbered_lines, numbers};

#[test]
fn tiny_buffer_drops_the_oldest_lines_and_reports_the_exact_count() {
    let dir = TempDir::new("drops");
    let port = free_port();
    let to = format!("127.0.0.1:{port}");
    let mut logfwd = Logfwd::start(&["--to", &to, "--hostname", "node-4", "--buffer-lines", "10"]);
    logfwd.write(numbered_lines(1, 250, 60).as_bytes());
    logfwd.wait_for_echo(250);
    logfwd.wait_for_log("dropping the oldest lines");

    let collector = Rsyslog::start(dir.path(), port);
    let messages = collector.wait_for_messages("node-4", 11);
    assert_eq!(
        messages[0],
        "logfwd: dropped 240 lines while the collector was unreachable"
    );
    assert_eq!(numbers(&messages[1..]), (241..=250).collect::<Vec<_>>());
    logfwd.wait_for_log("logfwd: dropped 240 lines while the collector was unreachable");

    logfwd.close_stdin();
    let (status, _) = logfwd.wait_exit(PATIENCE);
    assert!(status.success(), "exit status {status}");
    assert_eq!(
        collector.messages("node-4").len(),
        11,
        "nothing else arrived"
    );
}

#[test]
fn byte_bound_keeps_only_what_fits() {
    let dir = TempDir::new("byte-bound");
    let port = free_port();
    let to = format!("127.0.0.1:{port}");
    // Frames of these lines are 60 + ~70 header bytes: 1000 bytes hold 7 of them.
    let mut logfwd = Logfwd::start(&[
        "--to",
        &to,
        "--hostname",
        "node-5",
        "--buffer-bytes",
        "1000",
    ]);
    logfwd.write(numbered_lines(1, 100, 60).as_bytes());
    logfwd.wait_for_echo(100);

    let collector = Rsyslog::start(dir.path(), port);
    logfwd.close_stdin();
    let (status, _) = logfwd.wait_exit(PATIENCE);
    assert!(status.success(), "exit status {status}");
    let frame = 60
        + format!(
            "<14>1 2026-12-03T07:27:20.123456Z node-5 webapp {} - - ",
            logfwd.pid()
        )
        .len();
    let frame = frame + format!("{frame} ").len();
    let fits = 1000 / frame;
    let messages = collector.wait_for_messages("node-5", fits + 1);
    let kept = numbers(&messages[1..]);
    assert_eq!(
        kept,
        (101 - fits..=100).collect::<Vec<_>>(),
        "{fits} frames of {frame} bytes fit"
    );
    assert_eq!(
        messages[0],
        format!(
            "logfwd: dropped {} lines while the collector was unreachable",
            100 - fits
        )
    );
}

#[test]
fn end_of_input_flushes_and_exits_zero() {
    let dir = TempDir::new("flush");
    let port = free_port();
    let collector = Rsyslog::start(dir.path(), port);
    let to = format!("127.0.0.1:{port}");
    let mut logfwd = Logfwd::start(&["--to", &to, "--hostname", "node-6"]);
    logfwd.write(b"first\nsecond\nno newline at the end");
    logfwd.close_stdin();
    let (status, _) = logfwd.wait_exit(PATIENCE);
    assert!(status.success(), "exit status {status}");
    // Flushed means acknowledged by the collector before the exit.
    assert_eq!(
        collector.wait_for_messages("node-6", 3),
        ["first", "second", "no newline at the end"]
    );
    assert_eq!(logfwd.stdout(), b"first\nsecond\nno newline at the end\n");
}

#[test]
fn sigterm_flushes_like_end_of_input() {
    let dir = TempDir::new("sigterm");
    let port = free_port();
    let collector = Rsyslog::start(dir.path(), port);
    let to = format!("127.0.0.1:{port}");
    let mut logfwd = Logfwd::start(&["--to", &to, "--hostname", "node-7"]);
    logfwd.write(numbered_lines(1, 1000, 60).as_bytes());
    logfwd.wait_for_echo(1000);
    let pid = nix::unistd::Pid::from_raw(logfwd.pid() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM logfwd");
    let (status, _) = logfwd.wait_exit(PATIENCE);
    assert!(status.success(), "exit status {status}");
    assert_eq!(
        numbers(&collector.wait_for_messages("node-7", 1000)),
        (1..=1000).collect::<Vec<_>>()
    );
}

#[test]
fn collector_down_at_end_of_input_exits_after_the_flush_timeout() {
    let port = free_port();
    let to = format!("127.0.0.1:{port}");
    let mut logfwd = Logfwd::start(&["--to", &to, "--flush-timeout", "1500ms"]);
    logfwd.write(b"one\ntwo\nthree\n");
    logfwd.wait_for_echo(3);
    logfwd.close_stdin();
    let (status, took) = logfwd.wait_exit(PATIENCE);
    assert!(status.success(), "exit status {status}");
    assert!(
        took >= Duration::from_millis(1400),
        "exited after {took:?}, before the flush timeout"
    );
    assert!(took < Duration::from_secs(10), "exited after {took:?}");
    let stderr = logfwd.stderr();
    assert!(stderr.contains("3 lines not delivered"), "stderr: {stderr}");
}

/// A collector that accepts and then never reads: after 2 s without an acknowledgement
/// logfwd reads its input again (dropping the oldest lines) so that the service does not
/// block, and at end of input it exits after the flush timeout, saying what it lost.
#[test]
fn a_stalled_collector_stalls_neither_the_input_nor_the_exit() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let to = listener.local_addr().expect("its address").to_string();
    let mut logfwd = Logfwd::start(&["--to", &to, "--no-echo", "--flush-timeout", "1s"]);
    let (_stalled, _) = listener.accept().expect("logfwd connects");
    let mut stdin = logfwd.take_stdin();
    // 300,000 lines of 100 bytes: more than the kernel buffers on both sides take.
    let writer = thread::spawn(move || stdin.write_all(numbered_lines(1, 300_000, 100).as_bytes()));
    writer
        .join()
        .expect("writer thread")
        .expect("logfwd reads all of its input");
    let (status, took) = logfwd.wait_exit(PATIENCE);
    assert!(status.success(), "exit status {status}");
    assert!(
        took < Duration::from_secs(15),
        "exited {took:?} after end of input"
    );
    let stderr = logfwd.stderr();
    assert!(
        stderr.contains("dropping the oldest lines"),
        "stderr: {stderr}"
    );
    assert!(stderr.contains("lines not delivered"), "stderr: {stderr}");
}
