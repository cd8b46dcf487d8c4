//! `haproxy-sync` (examples/haproxy-sync) against a real HAProxy on loopback: gossip events
//! in, HAProxy's runtime state and real requests through it out.
//!
//! Each test starts its own HAProxy (`haproxy -db`, an admin socket in a temp dir) in front
//! of web nodes that are threads of the test, feeds the handler a Serf-style event, and
//! checks what HAProxy then does: which servers it has (`show servers state`), whether a
//! request in flight to a leaving node completes, and what the config file says.

#[allow(dead_code)] // shared with the other test targets
#[path = "../common/build_dir.rs"]
mod build_dir;
mod haproxy;
mod nodes;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use haproxy::{HaProxy, Paths};
use nodes::{Vanished, WebNode};

/// The handler under test, built on first use.
fn handler() -> &'static Path {
    static BUILT: OnceLock<std::path::PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--example", "haproxy-sync"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo runs");
        assert!(
            status.success(),
            "cargo build --example haproxy-sync failed"
        );
        build_dir::build_dir("debug").join("examples/haproxy-sync")
    })
}

/// Runs the handler for `event` with `members` on stdin, as the gossip agent would.
fn run_handler(haproxy: &Paths, event: &str, members: &str, extra: &[&str]) -> Output {
    let mut child = Command::new(handler())
        .args([
            "--socket",
            haproxy.socket.to_str().expect("utf-8 temp path"),
        ])
        .args([
            "--config",
            haproxy.config.to_str().expect("utf-8 temp path"),
        ])
        .args(extra)
        .env("SERF_EVENT", event)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("haproxy-sync starts");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(members.as_bytes())
        .expect("members written");
    let output = child.wait_with_output().expect("haproxy-sync ends");
    eprintln!(
        "haproxy-sync {event}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn member(name: &str, node: &WebNode) -> String {
    format!("{name}\t127.0.0.1\tweb\tport={}\n", node.port())
}

/// No HAProxy on this machine: skip, except under CI, where `.ci/run` installs it.
fn haproxy_or_skip() -> Option<HaProxy> {
    if Command::new("haproxy").arg("-v").output().is_err() {
        assert!(
            std::env::var("CI").is_err(),
            "CI=true but haproxy is not installed"
        );
        eprintln!("skipped: no haproxy on this machine (apt-get install haproxy)");
        return None;
    }
    Some(HaProxy::start())
}

#[test]
fn a_joining_member_becomes_a_server_that_takes_requests() {
    let Some(haproxy) = haproxy_or_skip() else {
        return;
    };
    let (one, two) = (WebNode::start("one"), WebNode::start("two"));
    let members = member("web-1", &one) + &member("web-2", &two) + "lb\t127.0.0.1\tlb\t\n";
    let output = run_handler(&haproxy.paths, "member-join", &members, &[]);
    assert!(output.status.success());

    assert_eq!(
        haproxy.server_names(),
        ["web-1", "web-2"],
        "the lb member is not a server"
    );
    haproxy.wait_until_up("web-1");
    haproxy.wait_until_up("web-2");
    let answers: Vec<String> = (0..4).map(|_| haproxy.get("/")).collect();
    assert!(
        answers.contains(&"one".to_string()) && answers.contains(&"two".to_string()),
        "{answers:?}"
    );

    let config = std::fs::read_to_string(&haproxy.paths.config).expect("config readable");
    assert!(
        config.contains(&format!("server web-1 127.0.0.1:{} check", one.port())),
        "{config}"
    );
    assert!(
        config.contains(&format!("server web-2 127.0.0.1:{} check", two.port())),
        "{config}"
    );
}

#[test]
fn a_restarted_haproxy_has_the_same_servers_from_the_rewritten_config() {
    let Some(haproxy) = haproxy_or_skip() else {
        return;
    };
    let node = WebNode::start("kept");
    assert!(
        run_handler(&haproxy.paths, "member-join", &member("web-1", &node), &[])
            .status
            .success()
    );
    let restarted = haproxy.restart();
    assert_eq!(restarted.server_names(), ["web-1"]);
    restarted.wait_until_up("web-1");
    assert_eq!(restarted.get("/"), "kept");
}

#[test]
fn a_leaving_member_is_drained_its_request_in_flight_completes_then_it_is_removed() {
    let Some(haproxy) = haproxy_or_skip() else {
        return;
    };
    let node = WebNode::start("leaving");
    assert!(
        run_handler(&haproxy.paths, "member-join", &member("web-1", &node), &[])
            .status
            .success()
    );
    haproxy.wait_until_up("web-1");

    let slow = {
        let address = haproxy.frontend();
        std::thread::spawn(move || haproxy::get(address, "/slow"))
    };
    node.wait_for_held_requests(1);
    let leave = {
        let (paths, members) = (haproxy.paths.clone(), member("web-1", &node));
        std::thread::spawn(move || run_handler(&paths, "member-leave", &members, &[]))
    };
    haproxy.wait_until_draining("web-1");
    assert!(
        !leave.is_finished(),
        "the handler must wait for the request in flight"
    );
    node.release_held_requests();

    assert_eq!(
        slow.join().expect("client thread"),
        "leaving",
        "the request in flight completed"
    );
    assert!(leave.join().expect("handler thread").status.success());
    assert!(haproxy.server_names().is_empty());
    let config = std::fs::read_to_string(&haproxy.paths.config).expect("config readable");
    assert!(!config.contains("server web-1"), "{config}");
}

#[test]
fn a_failed_member_is_removed_at_once_even_with_a_request_in_flight() {
    let Some(haproxy) = haproxy_or_skip() else {
        return;
    };
    let node = WebNode::start("failing");
    assert!(
        run_handler(&haproxy.paths, "member-join", &member("web-1", &node), &[])
            .status
            .success()
    );
    haproxy.wait_until_up("web-1");
    let address = haproxy.frontend();
    let _held = std::thread::spawn(move || haproxy::get(address, "/slow"));
    node.wait_for_held_requests(1);

    let started = Instant::now();
    let output = run_handler(
        &haproxy.paths,
        "member-failed",
        &member("web-1", &node),
        &["--drain-timeout", "60s"],
    );
    assert!(output.status.success());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "no drain wait for a failed member"
    );
    assert!(haproxy.server_names().is_empty());
    node.release_held_requests();
}

#[test]
fn a_request_still_connecting_to_a_failed_member_fails_over_instead_of_being_cut() {
    let Some(haproxy) = haproxy_or_skip() else {
        return;
    };
    let vanished = Vanished::new();
    let gone = format!("web-2\t127.0.0.1\tweb\tport={}\n", vanished.port());
    assert!(
        run_handler(&haproxy.paths, "member-join", &gone, &[])
            .status
            .success()
    );
    // web-2 is the only server: the request goes there and waits in connect.
    let request = {
        let address = haproxy.frontend();
        std::thread::spawn(move || haproxy::get(address, "/"))
    };
    haproxy.wait_until_sessions("web-2", 1);
    let alive = WebNode::start("alive");
    assert!(
        run_handler(&haproxy.paths, "member-join", &member("web-1", &alive), &[])
            .status
            .success()
    );
    let output = run_handler(&haproxy.paths, "member-failed", &gone, &[]);
    assert!(output.status.success());

    // Its connect timed out (500 ms), and HAProxy's retry went to the live server.
    assert_eq!(
        request
            .join()
            .expect("the request was answered, not cut with the failed server"),
        "alive"
    );
    assert_eq!(haproxy.server_names(), ["web-1"]);
}

#[test]
fn a_leave_of_a_member_that_is_not_a_server_changes_nothing() {
    let Some(haproxy) = haproxy_or_skip() else {
        return;
    };
    let node = WebNode::start("stays");
    assert!(
        run_handler(&haproxy.paths, "member-join", &member("web-1", &node), &[])
            .status
            .success()
    );
    let output = run_handler(&haproxy.paths, "member-leave", &member("web-9", &node), &[]);
    assert!(output.status.success());
    assert_eq!(haproxy.server_names(), ["web-1"]);
}

#[test]
fn bad_input_gets_a_message_and_a_non_zero_exit() {
    let unknown = Command::new(handler())
        .arg("--bogus")
        .env("SERF_EVENT", "member-join")
        .output();
    let unknown = unknown.expect("runs");
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown option \"--bogus\""));

    let no_event = Command::new(handler())
        .env_remove("SERF_EVENT")
        .output()
        .expect("runs");
    assert_eq!(no_event.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&no_event.stderr).contains("SERF_EVENT is not set"));

    let mut no_socket = Command::new(handler())
        .args(["--socket", "/nonexistent/admin.sock"])
        .env("SERF_EVENT", "member-join")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    use std::io::Write;
    no_socket
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"web-1\t127.0.0.1\tweb\t\n")
        .expect("written");
    let no_socket = no_socket.wait_with_output().expect("ends");
    assert_eq!(no_socket.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&no_socket.stderr);
    assert!(
        stderr.contains("cannot connect to /nonexistent/admin.sock"),
        "{stderr}"
    );
}
