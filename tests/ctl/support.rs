//! What the control tests share: service folders, running `pidvisorctl`, speaking the
//! protocol directly, reading the events file.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::os::unix::net::UnixStream;
use std::process::{Command, Output};

use serde_json::Value;

use crate::harness::{Launch, PATIENCE, PIDVISOR, Pidvisor, TempDir, poll_until};

/// Writes `services.d/<name>/run` (a shell script body) and its `service.toml`.
pub fn service(dir: &TempDir, name: &str, run: &str, toml: &str) {
    let folder = dir.path().join("services.d").join(name);
    fs::create_dir_all(&folder).expect("service folder");
    let run_path = folder.join("run");
    fs::write(&run_path, format!("#!/bin/sh\n{run}\n")).expect("run");
    fs::set_permissions(&run_path, fs::Permissions::from_mode(0o755)).expect("chmod run");
    if !toml.is_empty() {
        fs::write(folder.join("service.toml"), toml).expect("service.toml");
    }
}

/// The control socket of the pidvisor started in `dir` (the harness puts it there).
pub fn socket(dir: &TempDir) -> String {
    dir.file("control.sock")
}

/// The events file of the pidvisor started by [`start`].
pub fn events_file(dir: &TempDir) -> String {
    dir.file("events.jsonl")
}

/// pidvisor as PID 1 with `dir/services.d`, an events file, and `env`; returns once its
/// control socket answers.
pub fn start(dir: &TempDir, env: &[(&str, &str)]) -> Pidvisor {
    start_as(dir, env, |launch| launch)
}

/// [`start`], with what `adjust` changes in the launch.
pub fn start_as(
    dir: &TempDir,
    env: &[(&str, &str)],
    adjust: impl FnOnce(Launch) -> Launch,
) -> Pidvisor {
    fs::create_dir_all(dir.path().join("services.d")).expect("services.d");
    let services = dir.file("services.d");
    let mut launch = Launch::pid1(dir, &["--services-dir", services.as_str()])
        .env("PIDVISOR_EVENTS_FILE", &events_file(dir));
    for (name, value) in env {
        launch = launch.env(name, value);
    }
    let mut pidvisor = adjust(launch).start();
    let path = socket(dir);
    pidvisor.wait_until("the control socket answers", |_| {
        UnixStream::connect(&path).is_ok()
    });
    pidvisor
}

/// `pidvisorctl` in `dir`: a symlink to pidvisor, as users install it.
pub fn ctl_path(dir: &TempDir) -> String {
    let path = dir.path().join("bin/pidvisorctl");
    if !path.exists() {
        fs::create_dir_all(dir.path().join("bin")).expect("bin");
        symlink(PIDVISOR, &path).expect("symlink pidvisorctl");
    }
    dir.file("bin/pidvisorctl")
}

/// What a `pidvisorctl` run gave.
#[derive(Debug)]
pub struct CtlRun {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl CtlRun {
    fn from(output: Output) -> CtlRun {
        CtlRun {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Asserts the exit code, showing everything if it differs.
    pub fn expect(self, code: i32) -> CtlRun {
        assert_eq!(self.code, code, "pidvisorctl: {self:?}");
        self
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("pidvisorctl's output is not JSON ({e}): {self:?}"))
    }
}

/// A `pidvisorctl` command, talking to `dir`'s socket.
pub fn ctl_command(dir: &TempDir, args: &[&str]) -> Command {
    let mut command = Command::new(ctl_path(dir));
    command.args(args);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PIDVISOR_") {
            command.env_remove(name);
        }
    }
    command.env("PIDVISOR_SOCKET", socket(dir));
    command
}

/// Runs `pidvisorctl ARGS` to its end.
pub fn ctl(dir: &TempDir, args: &[&str]) -> CtlRun {
    let output = ctl_command(dir, args)
        .output()
        .unwrap_or_else(|e| panic!("running pidvisorctl {args:?}: {e}"));
    CtlRun::from(output)
}

/// The status of one service, as `status --json` gives it.
pub fn status(dir: &TempDir, name: &str) -> Value {
    let run = ctl(dir, &["status", name, "--json"]).expect(0);
    run.json()["services"][0].clone()
}

/// A raw protocol connection.
pub struct Connection {
    pub stream: UnixStream,
    reader: BufReader<UnixStream>,
}

impl Connection {
    pub fn open(dir: &TempDir) -> Connection {
        Connection::open_path(std::path::Path::new(&socket(dir)))
    }

    pub fn open_path(socket: &std::path::Path) -> Connection {
        let stream = UnixStream::connect(socket).expect("connect to the control socket");
        stream
            .set_read_timeout(Some(PATIENCE))
            .expect("read timeout");
        let reader = BufReader::new(stream.try_clone().expect("clone"));
        Connection { stream, reader }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// The next line, parsed; `None` at end-of-file.
    pub fn receive(&mut self) -> Option<Value> {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).expect("receive");
        if n == 0 {
            return None;
        }
        Some(serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
    }

    /// Sends a request line and returns the reply.
    pub fn ask(&mut self, request: &str) -> Value {
        self.send(format!("{request}\n").as_bytes());
        self.receive().expect("a reply")
    }
}

/// The events in the events file, in file order.
pub fn read_events(dir: &TempDir) -> Vec<Value> {
    let text = fs::read_to_string(events_file(dir)).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad event line ({e}): {l}")))
        .collect()
}

/// Waits until the events file has an event matching `wanted`.
pub fn wait_for_event(dir: &TempDir, what: &str, wanted: impl Fn(&Value) -> bool) {
    poll_until(PATIENCE, what, || {
        let events = read_events(dir);
        if events.iter().any(&wanted) {
            Ok(())
        } else {
            Err(format!("{} events", events.len()))
        }
    });
}

/// The events of `service` named `kind`.
pub fn events_of<'a>(events: &'a [Value], service: &str, kind: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["service"] == service && e["event"] == kind)
        .collect()
}
