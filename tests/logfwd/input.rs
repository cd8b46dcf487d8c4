//! Input that must not hurt: a 1 MiB line (cut to `--max-line` with a marker), bytes that
//! are not UTF-8 (passed through), bad arguments (a message and exit 2, never a panic).

use crate::collector::Rsyslog;
use crate::process::Logfwd;
use crate::support::{PATIENCE, TempDir, free_port};

#[test]
fn a_line_of_1_mib_is_cut_to_max_line_with_a_marker() {
    let dir = TempDir::new("long-line");
    let port = free_port();
    let collector = Rsyslog::start(dir.path(), port);
    let to = format!("127.0.0.1:{port}");
    let mut logfwd = Logfwd::start(&["--to", &to, "--hostname", "node-8"]);
    let mut input = vec![b'x'; 1 << 20];
    input.extend_from_slice(b"\nafter the long one\n");
    logfwd.write(&input);
    logfwd.close_stdin();
    let (status, _) = logfwd.wait_exit(PATIENCE);
    assert!(
        status.success(),
        "exit status {status}; stderr: {}",
        logfwd.stderr()
    );

    let messages = collector.wait_for_messages("node-8", 2);
    let expected = format!(
        "{} [logfwd: cut {} bytes]",
        "x".repeat(65_536),
        (1 << 20) - 65_536
    );
    assert_eq!(messages[0].len(), expected.len());
    assert!(
        messages[0] == expected,
        "the long line arrives cut and marked"
    );
    assert_eq!(messages[1], "after the long one");
}

#[test]
fn bytes_that_are_not_utf8_pass_through() {
    let dir = TempDir::new("non-utf8");
    let port = free_port();
    let collector = Rsyslog::start(dir.path(), port);
    let to = format!("127.0.0.1:{port}");
    let mut logfwd = Logfwd::start(&["--to", &to, "--hostname", "node-9"]);
    let line = b"caf\xe9 \xff\xfe end";
    logfwd.write(line);
    logfwd.write(b"\n");
    logfwd.close_stdin();
    let (status, _) = logfwd.wait_exit(PATIENCE);
    assert!(status.success(), "exit status {status}");
    collector.wait_for_messages("node-9", 1);
    let raw = collector.raw("node-9");
    assert!(
        raw.windows(line.len()).any(|w| w == line),
        "raw bytes arrive: {raw:?}"
    );
    assert_eq!(logfwd.stdout(), b"caf\xe9 \xff\xfe end\n");
}

#[test]
fn bad_arguments_give_a_message_and_exit_2() {
    let cases: [(&[&str], &str); 7] = [
        (
            &["--to", "127.0.0.1:514", "--bogus"],
            "unknown argument \"--bogus\"",
        ),
        (&["--to", "no-port"], "--to \"no-port\": no port"),
        (&["--to", "host:99999"], "bad port \"99999\""),
        (&["--to", ":514"], "bad host"),
        (
            &["--no-echo"],
            "--no-echo without --to leaves nothing to do",
        ),
        (
            &["--to", "h:514", "--facility", "nope"],
            "--facility \"nope\"",
        ),
        (
            &["--to", "h:514", "--buffer-lines", "0"],
            "--buffer-lines \"0\"",
        ),
    ];
    for (args, message) in cases {
        let mut logfwd = Logfwd::start(args);
        logfwd.close_stdin();
        let (status, _) = logfwd.wait_exit(PATIENCE);
        let stderr = logfwd.stderr();
        assert_eq!(status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(message),
            "{args:?}: expected {message:?} in {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn without_a_collector_it_only_echoes_and_exits_0_at_end_of_input() {
    let mut logfwd = Logfwd::start(&["--hostname", "node-10"]);
    logfwd.write(b"first\nsecond, without a newline");
    logfwd.close_stdin();
    let (status, _) = logfwd.wait_exit(PATIENCE);
    assert!(
        status.success(),
        "exit status {status}; stderr: {}",
        logfwd.stderr()
    );
    assert_eq!(logfwd.stdout(), b"first\nsecond, without a newline");
    assert!(
        logfwd.stderr().contains("no --to: echoing only"),
        "{}",
        logfwd.stderr()
    );
}
