//! The command line: flags, `$WEBAPP_PORT`, `--help`, and a clear one-line message with a
//! non-zero exit for every mistake, never a panic.

use std::net::{SocketAddr, TcpListener};

use crate::support::{Webapp, run};

/// Runs webapp with `args`, expects exit status 2 and returns its message.
fn refused(args: &[&str], env: &[(&str, &str)]) -> String {
    let output = run(args, env);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
    assert!(
        output.stdout.is_empty(),
        "{args:?}: nothing on stdout: {output:?}"
    );
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    stderr
}

#[test]
fn mistakes_are_named_with_their_fix() {
    for (args, says) in [
        (
            &["--bogus"][..],
            "unknown flag --bogus; webapp --help lists the flags",
        ),
        (
            &["--listen", "localhost"],
            "--listen localhost: not an address; write IP:PORT",
        ),
        (
            &["--listen", "1.2.3.4:99999"],
            "--listen 1.2.3.4:99999: not an address",
        ),
        (
            &["--drain", "3x"],
            "--drain 3x: \"x\" is not a unit; use ms, s, m or h",
        ),
        (
            &["--drain=soon"],
            "--drain soon: not a duration; write e.g. 500ms",
        ),
        (&["--node"], "--node needs a value"),
        (&["--node", ""], "--node needs a non-empty name"),
        (
            &["--drain", "1s", "--drain", "2s"],
            "--drain is given twice",
        ),
        (
            &["--notify-fd", "three"],
            "--notify-fd three: not a descriptor number",
        ),
        (
            &["--notify-fd", "9"],
            "--notify-fd 9: descriptor 9 is not open",
        ),
        (
            &["--notify-fd", "1"],
            "--notify-fd 1: 0, 1 and 2 are stdin, stdout and stderr",
        ),
    ] {
        let stderr = refused(args, &[]);
        assert!(stderr.contains(says), "{args:?}: {stderr:?} lacks {says:?}");
    }
    let stderr = refused(&[], &[("WEBAPP_PORT", "http")]);
    assert!(
        stderr.contains("WEBAPP_PORT=\"http\" is not a port number"),
        "{stderr}"
    );
}

#[test]
fn an_address_in_use_is_a_clear_error() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let addr = taken.local_addr().expect("its address").to_string();
    let output = run(&["--listen", &addr], &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(
        stderr.contains(&format!("--listen {addr}: cannot listen there")),
        "{stderr}"
    );
    assert!(stderr.contains("in use"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn help_lists_every_flag() {
    let output = run(&["--help"], &[]);
    assert!(output.status.success(), "{output:?}");
    let usage = String::from_utf8_lossy(&output.stdout);
    for flag in ["--listen", "--notify-fd", "--drain", "--node", "--help"] {
        assert!(
            usage.lines().any(|l| l.trim_start().starts_with(flag)),
            "{flag} in {usage}"
        );
    }
}

#[test]
fn webapp_port_sets_the_port_without_listen() {
    let webapp = Webapp::start_with(&[], &[("WEBAPP_PORT", "0")]);
    assert_eq!(
        webapp.addr.ip(),
        SocketAddr::from(([0, 0, 0, 0], 0)).ip(),
        "all IPv4 addresses"
    );
    assert_eq!(webapp.get("/health").status, 200);
    let reply = webapp.request("GET", "/", &[("Accept", "application/json")]);
    let doc: serde_json::Value = serde_json::from_str(&reply.body).expect("JSON");
    let shown: std::net::IpAddr = doc["address"]
        .as_str()
        .and_then(|a| a.parse().ok())
        .expect("an IP");
    assert!(
        !shown.is_unspecified(),
        "an address a client can use: {shown}"
    );
}
