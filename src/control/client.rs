//! `pidvisorctl`: the client of the control socket. The same binary as pidvisor, chosen by
//! its name (`ln -s /init /usr/bin/pidvisorctl`), so that one file is all an image needs.
//!
//! It turns a command line into one request line (see [`crate::control::protocol`]), sends
//! it, and turns the reply into text for people, JSON for programs (`--json`), and an exit
//! code for scripts: 0 done, 1 refused or not reachable (unknown service, a service that
//! failed while starting, ...), 2 usage error, 3 timed out, 4 cannot talk to pidvisor (no
//! socket, nobody listening, permission denied). Parsing (`args`) and rendering
//! (`render`) are pure and unit-tested; this file does the talking.

use std::ffi::OsString;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::control::protocol::{self, Request, ServiceStatus};
use crate::duration::deadline_after;
use crate::output::console;

mod args;
mod probe;
mod render;

pub use args::invoked_as_ctl;
use args::{DEFAULT_TIMEOUT, HELP, Invocation, parse};
use render::{describe_event, status_row, text};

pub const OK: u8 = 0;
pub const REFUSED: u8 = 1;
pub const USAGE: u8 = 2;
pub const TIMED_OUT: u8 = 3;
pub const NO_PIDVISOR: u8 = 4;

/// How often `wait` tries again to connect while pidvisor is not up yet.
const CONNECT_RETRY: Duration = Duration::from_millis(20);
/// Extra time the client gives pidvisor to answer beyond the request's own timeout.
const ANSWER_MARGIN: Duration = Duration::from_secs(5);

/// pidvisorctl's `main`.
pub fn main(args: impl Iterator<Item = OsString>) -> ExitCode {
    match parse(args, |name| std::env::var(name).ok()) {
        Ok(Invocation::Help) => match console::print_stdout(HELP) {
            true => ExitCode::SUCCESS,
            false => ExitCode::FAILURE,
        },
        Ok(Invocation::Run {
            socket,
            request,
            json,
            within,
        }) => {
            if let Some(within) = within
                && let Err(err) = probe::arm_deadline(within)
            {
                console::print_stderr(&format!("pidvisorctl: {err}\n"));
                return ExitCode::from(REFUSED);
            }
            ExitCode::from(run(&socket, &request, json))
        }
        Err(err) => {
            console::print_stderr(&format!("pidvisorctl: {err} (see 'pidvisorctl --help')\n"));
            ExitCode::from(USAGE)
        }
    }
}

/// A failure, with its exit code.
struct Failure(u8, String);

fn run(socket: &Path, request: &Request, json: bool) -> u8 {
    match talk(socket, request, json) {
        Ok(()) => OK,
        // A probe's answer is yes or no: every failure is a no.
        Err(Failure(_, message)) if matches!(request, Request::Health { .. } | Request::Ping) => {
            console::print_stderr(&format!("pidvisorctl: {message}\n"));
            REFUSED
        }
        Err(Failure(code, message)) => {
            console::print_stderr(&format!("pidvisorctl: {message}\n"));
            code
        }
    }
}

fn connect(socket: &Path) -> Result<UnixStream, Failure> {
    UnixStream::connect(socket).map_err(|err| {
        let path = socket.display();
        let message = match err.raw_os_error() {
            Some(libc::ENOENT) => format!(
                "no control socket at {path}: is pidvisor running? (if it listens elsewhere, \
                 set PIDVISOR_SOCKET or --socket)"
            ),
            Some(libc::ECONNREFUSED) => {
                format!("nothing listens on {path}: is pidvisor running?")
            }
            Some(libc::EACCES) | Some(libc::EPERM) => format!(
                "permission denied on {path}: run pidvisorctl as root or as the user pidvisor runs as"
            ),
            _ => format!("cannot connect to {path}: {err}"),
        };
        Failure(NO_PIDVISOR, message)
    })
}

/// `wait` also waits for pidvisor itself: a script started next to it may ask before
/// the socket exists. Other commands fail at once.
fn connect_for(socket: &Path, request: &Request) -> Result<UnixStream, Failure> {
    let Request::Wait { timeout, .. } = request else {
        return connect(socket);
    };
    let deadline = timeout
        .filter(|t| *t > 0.0)
        .and_then(|t| Duration::try_from_secs_f64(t).ok())
        .map(|t| deadline_after(Instant::now(), t));
    loop {
        match UnixStream::connect(socket) {
            Ok(stream) => return Ok(stream),
            Err(err)
                if matches!(err.raw_os_error(), Some(libc::ENOENT | libc::ECONNREFUSED))
                    && deadline.is_none_or(|d| Instant::now() < d) =>
            {
                std::thread::sleep(CONNECT_RETRY);
            }
            Err(_) => return connect(socket),
        }
    }
}

fn talk(socket: &Path, request: &Request, json: bool) -> Result<(), Failure> {
    let stream = connect_for(socket, request)?;
    let io_failure = |err: io::Error| Failure(NO_PIDVISOR, format!("talking to pidvisor: {err}"));
    let wait = match request {
        Request::Start { timeout, .. }
        | Request::Stop { timeout, .. }
        | Request::Restart { timeout, .. }
        | Request::Wait { timeout, .. } => timeout
            .filter(|t| *t > 0.0)
            .and_then(|t| Duration::try_from_secs_f64(t).ok())
            .map(|t| t.saturating_add(ANSWER_MARGIN)),
        Request::Events { follow: true } => None,
        _ => Some(DEFAULT_TIMEOUT),
    };
    stream.set_read_timeout(wait).map_err(io_failure)?;
    let sent = (&stream).write_all(protocol::render_request(request).as_bytes());
    let mut reader = BufReader::new(&stream);
    // A refused client is told why and closed before it can send anything: the reason is
    // there to read even when the write failed.
    let reply = match sent {
        Ok(()) => read_reply(&mut reader)?,
        Err(err) => {
            let refusal = read_line(&mut reader)
                .ok()
                .flatten()
                .and_then(|line| serde_json::from_str::<Value>(&line).ok())
                .filter(|reply| reply["ok"] == Value::Bool(false));
            return Err(refusal.map_or_else(|| io_failure(err), |reply| refused(&reply)));
        }
    };
    if let Request::Events { .. } = request {
        return print_events(&mut reader, &reply, json);
    }
    if let Request::Health { .. } = request {
        let (healthy, lines) = probe::describe_health(&reply);
        if json {
            print_line(&reply.to_string());
        } else {
            lines.iter().for_each(|line| print_line(line));
        }
        return match healthy {
            true => Ok(()),
            false => Err(Failure(REFUSED, "not healthy".into())),
        };
    }
    if json {
        print_line(&reply.to_string());
        return Ok(());
    }
    match request {
        Request::Ping => print_line(&probe::describe_ping(&reply)),
        Request::Status { .. } => print_status(&reply),
        Request::Shutdown { .. } => print_line("pidvisor: shutting down"),
        Request::Signal { .. } => print_line(&format!(
            "{}: sent {} to pid {}",
            text(&reply["service"]),
            text(&reply["signal"]),
            text(&reply["pid"])
        )),
        _ => {
            let pid = match &reply["pid"] {
                Value::Number(pid) => format!(" (pid {pid})"),
                _ => String::new(),
            };
            print_line(&format!(
                "{}: {}{pid}",
                text(&reply["service"]),
                text(&reply["state"])
            ));
        }
    }
    Ok(())
}

/// Reads one reply line; a refusal becomes a [`Failure`] with the matching exit code.
fn read_reply(reader: &mut impl BufRead) -> Result<Value, Failure> {
    let line = read_line(reader)?.ok_or_else(|| {
        Failure(
            NO_PIDVISOR,
            "pidvisor closed the connection without answering".into(),
        )
    })?;
    let reply: Value = serde_json::from_str(&line).map_err(|e| {
        Failure(
            NO_PIDVISOR,
            format!("pidvisor's answer is not JSON ({e}): {line}"),
        )
    })?;
    if reply["ok"] == Value::Bool(true) {
        return Ok(reply);
    }
    Err(refused(&reply))
}

/// pidvisor's refusal as a [`Failure`] with the matching exit code.
fn refused(reply: &Value) -> Failure {
    let message = reply["message"].as_str().unwrap_or("refused").to_owned();
    let code = match reply["error"].as_str() {
        Some("timeout") => TIMED_OUT,
        Some("permission_denied") | Some("busy") => NO_PIDVISOR,
        _ => REFUSED,
    };
    Failure(code, message)
}

fn read_line(reader: &mut impl BufRead) -> Result<Option<String>, Failure> {
    let mut line = String::new();
    match reader.read_line(&mut line) {
        Ok(0) => Ok(None),
        Ok(_) => Ok(Some(line)),
        Err(err)
            if matches!(
                err.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Err(Failure(TIMED_OUT, "pidvisor did not answer in time".into()))
        }
        Err(err) => Err(Failure(
            NO_PIDVISOR,
            format!("reading pidvisor's answer: {err}"),
        )),
    }
}

fn print_events(reader: &mut impl BufRead, header: &Value, json: bool) -> Result<(), Failure> {
    let history = header["history"].as_u64().unwrap_or(0);
    let follow = header["follow"] == Value::Bool(true);
    let mut seen = 0u64;
    while follow || seen < history {
        let Some(line) = read_line(reader)? else {
            // pidvisor has exited: the stream is over.
            return Ok(());
        };
        let record: Value = serde_json::from_str(&line).map_err(|e| {
            Failure(
                NO_PIDVISOR,
                format!("pidvisor sent something that is not JSON ({e})"),
            )
        })?;
        if record["ok"] == Value::Bool(false) {
            let message = record["message"].as_str().unwrap_or("dropped");
            return Err(Failure(REFUSED, message.to_owned()));
        }
        seen += 1;
        if json {
            print_line(line.trim_end());
        } else {
            print_line(&describe_event(&record));
        }
    }
    Ok(())
}

fn print_status(reply: &Value) {
    let services: Vec<ServiceStatus> =
        serde_json::from_value(reply["services"].clone()).unwrap_or_default();
    if services.is_empty() {
        print_line("no services");
        return;
    }
    print_line(&format!(
        "{:<16} {:<9} {:>7} {:>8} {:>8}  {:<28} {}",
        "NAME", "STATE", "PID", "UPTIME", "RESTARTS", "LAST EXIT", "NEXT RESTART"
    ));
    for service in services {
        print_line(&status_row(&service));
    }
}

/// Prints a line; a closed stdout (`pidvisorctl events -f | head`) ends quietly.
fn print_line(line: &str) {
    let mut out = io::stdout().lock();
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        std::process::exit(i32::from(OK));
    }
}

#[cfg(test)]
mod tests {
    use super::render::human_seconds;
    use super::*;
    use crate::control::protocol::{DEFAULT_SOCKET, StateName};
    use std::ffi::OsStr;
    use std::path::PathBuf;

    fn parse_words(words: &[&str]) -> Result<Invocation, String> {
        parse(words.iter().map(OsString::from), |_| None)
    }

    fn request(words: &[&str]) -> Request {
        match parse_words(words) {
            Ok(Invocation::Run { request, .. }) => request,
            other => panic!("{words:?}: {other:?}"),
        }
    }

    #[test]
    fn recognises_its_name_from_any_path() {
        assert!(invoked_as_ctl(Some(OsStr::new("pidvisorctl"))));
        assert!(invoked_as_ctl(Some(OsStr::new("/usr/bin/pidvisorctl"))));
        assert!(!invoked_as_ctl(Some(OsStr::new("/init"))));
        assert!(!invoked_as_ctl(Some(OsStr::new("pidvisor"))));
        assert!(!invoked_as_ctl(None));
    }

    #[test]
    fn parses_each_command() {
        assert_eq!(
            request(&["status", "a", "b"]),
            Request::Status {
                services: vec!["a".into(), "b".into()]
            }
        );
        assert_eq!(
            request(&["start", "web"]),
            Request::Start {
                service: "web".into(),
                timeout: Some(10.0)
            }
        );
        assert_eq!(
            request(&["stop", "web", "--timeout=2s"]),
            Request::Stop {
                service: "web".into(),
                timeout: Some(2.0)
            }
        );
        assert!(matches!(
            request(&["restart", "web"]),
            Request::Restart { .. }
        ));
        assert_eq!(
            request(&["signal", "web", "USR1"]),
            Request::Signal {
                service: "web".into(),
                signal: "USR1".into()
            }
        );
        assert_eq!(
            request(&[
                "wait",
                "web",
                "--state",
                "failed",
                "--restarts",
                "3",
                "--timeout",
                "0"
            ]),
            Request::Wait {
                service: "web".into(),
                state: StateName::Failed,
                restarts: Some(3),
                timeout: Some(0.0)
            }
        );
        assert_eq!(
            request(&["shutdown", "--exit-code", "7"]),
            Request::Shutdown { exit_code: Some(7) }
        );
        assert_eq!(request(&["events", "-f"]), Request::Events { follow: true });
    }

    #[test]
    fn the_socket_comes_from_the_environment_or_the_flag() {
        let socket = |words: &[&str], env: Option<&str>| match parse(
            words.iter().map(OsString::from),
            |_| env.map(str::to_owned),
        ) {
            Ok(Invocation::Run { socket, .. }) => socket,
            other => panic!("{other:?}"),
        };
        assert_eq!(socket(&["status"], None), PathBuf::from(DEFAULT_SOCKET));
        assert_eq!(
            socket(&["status"], Some("/e.sock")),
            PathBuf::from("/e.sock")
        );
        assert_eq!(
            socket(&["--socket", "/f.sock", "status"], Some("/e.sock")),
            PathBuf::from("/f.sock")
        );
    }

    #[test]
    fn usage_errors_say_what_is_wrong() {
        let err = |words: &[&str]| parse_words(words).err().unwrap_or_default();
        assert!(err(&[]).contains("no command"));
        assert!(err(&["reboot"]).contains("unknown command 'reboot'"));
        assert!(err(&["start"]).contains("needs a service name"));
        assert!(err(&["start", "a", "b"]).contains("one service name"));
        assert!(err(&["wait", "web"]).contains("--state"));
        assert!(err(&["wait", "web", "--state", "up"]).contains("not a state"));
        assert!(err(&["signal", "web"]).contains("a signal"));
        assert!(err(&["status", "--follow"]).contains("does not take --follow"));
        assert!(err(&["start", "web", "--timeout", "soon"]).contains("--timeout"));
        // Longer than the protocol takes (and than a deadline can hold): a usage error,
        // not a panic when the deadline is computed.
        for cmd in [&["start", "web"][..], &["wait", "web", "--state", "ready"]] {
            let words = [cmd, &["--timeout", "3000000000000000h"]].concat();
            assert!(err(&words).contains("--timeout"), "{words:?}");
        }
        assert!(parse_words(&["start", "web", "--timeout", "8760h"]).is_ok());
        assert!(err(&["shutdown", "--exit-code", "256"]).contains("0 to 255"));
        assert!(err(&["status", "--verbose"]).contains("unknown option"));
        assert_eq!(parse_words(&["status", "--help"]), Ok(Invocation::Help));
    }

    #[test]
    fn renders_events_and_status_for_people() {
        let record: Value = serde_json::from_str(
            r#"{"seq":3,"mono":1.5,"wall":"2026-11-25T12:34:56.789Z","event":"restart_scheduled","service":"web","restarts":2,"delay":0.004,"nominal_delay":0.4,"due":1.504}"#,
        )
        .expect("JSON");
        assert_eq!(
            describe_event(&record),
            "12:34:56.789  web              restart_scheduled delay=0.004 due=1.504 nominal_delay=0.4 restarts=2"
        );
        let status = ServiceStatus {
            name: "web".into(),
            state: StateName::Backoff,
            wanted: true,
            pid: None,
            uptime: None,
            restarts: 2,
            last_exit: Some(protocol::LastExit {
                code: None,
                signal: Some("SIGSEGV".into()),
                at: String::new(),
                ago: 0.25,
                oom_killed: false,
            }),
            next_restart_in: Some(75.0),
            next_restart_at: None,
            health: None,
            last_check: None,
        };
        let row = status_row(&status);
        assert!(row.starts_with("web              backoff"), "{row}");
        assert!(row.contains("SIGSEGV, 250ms ago"), "{row}");
        assert!(row.ends_with("in 1m15s"), "{row}");
        assert_eq!(human_seconds(12.34), "12.3s");
        assert_eq!(human_seconds(7380.0), "2h03m");
    }
}
