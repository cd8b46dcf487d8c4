//! sd_notify towards the host: with `NOTIFY_SOCKET` set, pidvisor sends `STATUS=` lines
//! saying what it waits for, `READY=1` once the boot is over and the main command has
//! started, and `STOPPING=1` at shutdown; its children do not see the variable unless
//! `--keep-notify-socket` is given.

use std::fs;
use std::os::unix::net::UnixDatagram;

use crate::harness::{Launch, PATIENCE, TempDir};
use crate::support::{events_file, service};

/// The test's end of `NOTIFY_SOCKET`.
struct Host {
    socket: UnixDatagram,
    path: String,
}

impl Host {
    fn bind(dir: &TempDir) -> Host {
        let path = dir.file("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        socket.set_read_timeout(Some(PATIENCE)).expect("timeout");
        Host { socket, path }
    }

    /// The next message, as its lines.
    fn next(&self) -> Vec<String> {
        let mut buf = [0u8; 4096];
        let n = self
            .socket
            .recv(&mut buf)
            .expect("a notification within the patience");
        String::from_utf8_lossy(&buf[..n])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Messages until one has `line`; returns everything received so far.
    fn until(&self, line: &str) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            let message = self.next();
            let found = message.iter().any(|l| l == line);
            seen.extend(message);
            if found {
                return seen;
            }
        }
    }
}

fn launch(dir: &TempDir, host: &Host, extra: &[&str], command: &[&str]) -> Launch {
    fs::create_dir_all(dir.path().join("services.d")).expect("services.d");
    let services = dir.file("services.d");
    let mut args = vec!["--services-dir", services.as_str()];
    args.extend_from_slice(extra);
    args.extend_from_slice(command);
    Launch::pid1(dir, &args)
        .env("PIDVISOR_EVENTS_FILE", &events_file(dir))
        .env("NOTIFY_SOCKET", &host.path)
}

/// A main command that records whether it sees `NOTIFY_SOCKET`, then waits.
/// Writes what it saw, then renames it into place: the file never appears half written.
const MAIN: &str =
    "echo \"${NOTIFY_SOCKET-unset}\" > main-env.tmp && mv main-env.tmp main-env; exec sleep 1000";

#[test]
fn ready_comes_once_the_services_are_ready_and_the_main_command_runs_then_stopping() {
    let dir = TempDir::new("sdnotify");
    let host = Host::bind(&dir);
    service(
        &dir,
        "db",
        "exec sleep 1000",
        "ready = { command = \"test -e go\" }\nready-timeout = \"1h\"\n",
    );
    let mut pidvisor = launch(&dir, &host, &[], &["sh", "-c", MAIN]).start();
    let first = host.until("STATUS=waiting for db to be ready");
    assert!(!first.iter().any(|l| l == "READY=1"), "{first:?}");
    fs::write(dir.path().join("services.d/db/go"), "").expect("go");
    let ready = host.until("READY=1");
    assert!(
        ready.iter().any(|l| l == "STATUS=up: 1 service ready"),
        "{ready:?}"
    );
    pidvisor.wait_for_file(&dir.file("main-env"));
    let seen = fs::read_to_string(dir.path().join("main-env")).expect("main-env");
    assert_eq!(seen.trim(), "unset", "the main command saw NOTIFY_SOCKET");

    pidvisor.signal(libc::SIGTERM);
    let stopping = host.until("STOPPING=1");
    assert!(
        stopping.iter().any(|l| l == "STATUS=shutting down"),
        "{stopping:?}"
    );
    pidvisor.finish(PATIENCE);
}

#[test]
fn without_services_or_main_ready_comes_at_once_and_the_variable_can_be_kept() {
    let dir = TempDir::new("sdnotify-keep");
    let host = Host::bind(&dir);
    let mut pidvisor = launch(&dir, &host, &["--keep-notify-socket"], &["sh", "-c", MAIN]).start();
    host.until("READY=1");
    pidvisor.wait_for_file(&dir.file("main-env"));
    let seen = fs::read_to_string(dir.path().join("main-env")).expect("main-env");
    assert_eq!(seen.trim(), host.path, "--keep-notify-socket passes it on");
    pidvisor.signal(libc::SIGTERM);
    host.until("STOPPING=1");
    pidvisor.finish(PATIENCE);
}
