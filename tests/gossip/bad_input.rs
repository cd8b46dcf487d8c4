//! Bad command lines: a message naming the problem, exit 2 (1 for a place the agent cannot
//! listen on, or no agent to ask), never a panic. Nothing here reaches the network: the
//! agent stops at its arguments, or binds loopback port 0 and fails on its socket path.

use std::fs;
use std::process::Command;

use crate::harness::TempDir;
use crate::node::gossip_binary;

/// Runs gossip with `args`: (exit code, stderr).
fn gossip(args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(gossip_binary())
        .args(args)
        .output()
        .expect("running gossip");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !stderr.contains("panicked"),
        "gossip {args:?} panicked: {stderr}"
    );
    (output.status.code(), stderr)
}

fn refused(args: &[&str], code: i32, message: &str) {
    let (status, stderr) = gossip(args);
    assert_eq!(status, Some(code), "gossip {args:?}: {stderr}");
    assert!(
        stderr.contains(message),
        "gossip {args:?} should say {message:?}, said: {stderr}"
    );
}

#[test]
fn bad_command_lines_exit_2_with_a_message() {
    let dir = TempDir::new("gossip-bad-input");
    let not_executable = dir.file("handler.sh");
    fs::write(&not_executable, "#!/bin/sh\n").expect("writing handler.sh");
    let handler = format!("member-join={not_executable}");

    refused(
        &["agent", "--frobnicate"],
        2,
        "unknown option \"--frobnicate\"",
    );
    refused(&["--bind", "localhost:7946"], 2, "not an IP:PORT address");
    refused(&["--bind", "10.0.0.1:70000"], 2, "not an IP:PORT address");
    refused(&["--join", "seed-without-port"], 2, "not HOST:PORT");
    refused(&["--tag", "role"], 2, "not KEY=VALUE");
    refused(
        &["--event-handler", &handler],
        2,
        "is not an executable file",
    );
    refused(
        &["--event-handler", "/nonexistent/handler"],
        2,
        "is not an executable file",
    );
    refused(
        &["--event-handler", "user:deploy=true"],
        2,
        "unknown event \"user:deploy\"",
    );
    refused(&["--handler-timeout", "soon"], 2, "not a duration");
    refused(&["--notify-fd", "9"], 2, "descriptor 9 is not open");
    refused(&["members", "--format", "xml"], 2, "use table or json");
}

#[test]
fn unusable_sockets_exit_1_with_a_message() {
    let dir = TempDir::new("gossip-bad-socket");
    let missing = dir.file("no/such/dir/gossip.sock");
    refused(
        &["agent", "--bind", "127.0.0.1:0", "--socket", &missing],
        1,
        "pass --socket PATH",
    );
    refused(
        &["members", "--socket", &missing],
        1,
        "cannot reach the agent",
    );
}

#[test]
fn help_lists_the_options() {
    let output = Command::new(gossip_binary())
        .arg("--help")
        .output()
        .expect("running gossip --help");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    for option in ["--join", "--event-handler", "--notify-fd", "members"] {
        assert!(text.contains(option), "--help lacks {option}: {text}");
    }
}
