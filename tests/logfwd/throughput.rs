//! Throughput into rsyslog, measured with the release build (not part of the normal run):
//! `cargo test --test logfwd -- --ignored --nocapture throughput`.

use std::time::Instant;

use crate::collector::Rsyslog;
use crate::process::{Logfwd, release_binary};
use crate::support::{PATIENCE, TempDir, free_port, numbered_lines, numbers, tally};

#[test]
#[ignore = "a measurement: run with --ignored --nocapture"]
fn throughput_into_rsyslog() {
    let lines = 200_000;
    let dir = TempDir::new("throughput");
    let port = free_port();
    let collector = Rsyslog::start(dir.path(), port);
    let to = format!("127.0.0.1:{port}");
    let input = numbered_lines(1, lines, 100);
    let binary = release_binary();
    let start = Instant::now();
    let mut logfwd = Logfwd::start_with(binary, &["--to", &to, "--hostname", "bench", "--no-echo"]);
    logfwd.write(input.as_bytes());
    logfwd.close_stdin();
    let (status, _) = logfwd.wait_exit(PATIENCE);
    let acknowledged = start.elapsed();
    let messages = collector.wait_for_messages("bench", lines);
    let written = start.elapsed();
    assert!(status.success(), "exit status {status}");
    assert_eq!(tally(&numbers(&messages), 1, lines), (0, 0, 0));
    eprintln!(
        "{lines} lines of 100 bytes: all acknowledged after {acknowledged:?} ({:.0} lines/s), \
         all in rsyslog's file after {written:?} ({:.0} lines/s)",
        lines as f64 / acknowledged.as_secs_f64(),
        lines as f64 / written.as_secs_f64()
    );
}
