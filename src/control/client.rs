//! `pidvisorctl`: the client of the control socket. The same binary as pidvisor, chosen by
//! its name (`ln -s /init /usr/bin/pidvisorctl`), so that one file is all an image needs.
//!
//! It turns a command line into one request line (see [`crate::control::protocol`]), sends
//! it, and turns the reply into text for people, JSON for programs (`--json`), and an exit
//! code for scripts: 0 done, 1 refused or not reachable (unknown service, a service that
//! failed while starting, ...), 2 usage error, 3 timed out, 4 cannot talk to pidvisor (no
//! socket, nobody listening, permission denied). Parsing is pure and unit-tested.

use std::ffi::{OsStr, OsString};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::control::protocol::{self, DEFAULT_SOCKET, Request, ServiceStatus, StateName};
use crate::duration::{deadline_after, parse_duration};
use crate::output::console;

pub const OK: u8 = 0;
pub const REFUSED: u8 = 1;
pub const USAGE: u8 = 2;
pub const TIMED_OUT: u8 = 3;
pub const NO_PIDVISOR: u8 = 4;

/// How long start, stop, restart and wait wait by default.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often `wait` tries again to connect while pidvisor is not up yet.
const CONNECT_RETRY: Duration = Duration::from_millis(20);
/// Extra time the client gives pidvisor to answer beyond the request's own timeout.
const ANSWER_MARGIN: Duration = Duration::from_secs(5);

pub const HELP: &str = "\
pidvisorctl: show and drive the services of a running pidvisor.

Usage: pidvisorctl [--socket PATH] COMMAND [ARGS]

Commands:
  status [NAME...] [--json]      state, pid, uptime, restarts, last exit, next restart
  start NAME [--timeout D]       start it (forgiving past failures); wait until ready
  stop NAME [--timeout D]        stop it and keep it down until 'start', whatever its
                                 restart policy; wait until down
  restart NAME [--timeout D]     stop it, start it again; wait until the new run is ready
  signal NAME SIG                send SIG (TERM, HUP, USR1, 9, ...) to its process group
  wait NAME --state STATE [--restarts N] [--timeout D]
                                 wait until it is in STATE (down, starting, ready,
                                 stopping, finishing, backoff, failed, finished), after at
                                 least N restarts in all; waits for pidvisor to be up, too
  shutdown [--exit-code N]       shut the container down (with exit code N)
  events [--follow] [--json]     the recent life-cycle events; --follow: then every new
                                 one as it happens

Options:
  --socket PATH   the control socket          [PIDVISOR_SOCKET, default /run/pidvisor/control.sock]
  --timeout D     how long to wait: 500ms, 10s, 2m; 0 waits for ever        [default 10s]
  --json          print pidvisor's JSON replies as they are
  -h, --help      print this help and exit

Exit code: 0 done; 1 refused (unknown service, the service failed or was stopped
meanwhile, ...); 2 usage error; 3 timed out; 4 cannot talk to pidvisor (no socket,
nobody listening, permission denied).
";

/// True when the binary was started under the name `pidvisorctl`.
pub fn invoked_as_ctl(argv0: Option<&OsStr>) -> bool {
    argv0
        .map(Path::new)
        .and_then(Path::file_name)
        .is_some_and(|name| name == "pidvisorctl")
}

/// What the command line asks for.
#[derive(Debug, PartialEq)]
pub enum Invocation {
    Help,
    Run {
        socket: PathBuf,
        request: Request,
        json: bool,
    },
}

/// Parses the arguments (without the program name); `env` reads `PIDVISOR_SOCKET`.
pub fn parse<I, E>(args: I, env: E) -> Result<Invocation, String>
where
    I: IntoIterator<Item = OsString>,
    E: Fn(&str) -> Option<String>,
{
    let mut socket = env("PIDVISOR_SOCKET")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_SOCKET), PathBuf::from);
    let mut words = Vec::new();
    let mut json = false;
    let mut follow = false;
    let mut timeout = None;
    let mut state = None;
    let mut restarts = None;
    let mut exit_code = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let arg = arg
            .into_string()
            .map_err(|a| format!("'{}' is not valid UTF-8", a.to_string_lossy()))?;
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg.clone(), None),
        };
        let mut value = || -> Result<String, String> {
            inline
                .clone()
                .or_else(|| args.next().and_then(|v| v.into_string().ok()))
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Invocation::Help),
            "--socket" => socket = PathBuf::from(value()?),
            "--json" => json = true,
            "-f" | "--follow" => follow = true,
            "--timeout" => {
                let text = value()?;
                let parsed = parse_duration(&text).map_err(|e| format!("--timeout: {e}"))?;
                if parsed.as_secs_f64() >= protocol::MAX_TIMEOUT {
                    return Err(format!(
                        "--timeout: '{text}' is too long; use less than {}s, or 0 to wait for ever",
                        protocol::MAX_TIMEOUT
                    ));
                }
                timeout = Some(parsed);
            }
            "--state" => {
                state = Some(
                    value()?
                        .parse::<StateName>()
                        .map_err(|e| format!("--state: {e}"))?,
                )
            }
            "--restarts" => {
                let text = value()?;
                restarts = Some(
                    text.parse::<u32>()
                        .map_err(|_| format!("--restarts: '{text}' is not a count"))?,
                );
            }
            "--exit-code" => {
                let text = value()?;
                exit_code = Some(text.parse::<u8>().map_err(|_| {
                    format!("--exit-code: '{text}' is not an exit code (0 to 255)")
                })?);
            }
            _ if flag.starts_with('-') && flag.len() > 1 => {
                return Err(format!("unknown option '{arg}'"));
            }
            _ => words.push(arg),
        }
    }
    let Some((command, rest)) = words.split_first() else {
        return Err("no command given".to_owned());
    };
    let seconds = |t: Option<Duration>| Some(t.unwrap_or(DEFAULT_TIMEOUT).as_secs_f64());
    let one_name = |what: &str| -> Result<String, String> {
        match rest {
            [name] => Ok(name.clone()),
            [] => Err(format!("{what} needs a service name")),
            _ => Err(format!("{what} takes one service name")),
        }
    };
    let allowed = |ok: &[&str]| -> Result<(), String> {
        let given = [
            ("--json", json),
            ("--follow", follow),
            ("--timeout", timeout.is_some()),
            ("--state", state.is_some()),
            ("--restarts", restarts.is_some()),
            ("--exit-code", exit_code.is_some()),
        ];
        match given.iter().find(|(name, set)| *set && !ok.contains(name)) {
            Some((name, _)) => Err(format!("{command} does not take {name}")),
            None => Ok(()),
        }
    };
    let request = match command.as_str() {
        "status" => {
            allowed(&["--json"])?;
            Request::Status {
                services: rest.to_vec(),
            }
        }
        "start" | "stop" | "restart" => {
            allowed(&["--timeout", "--json"])?;
            let service = one_name(command)?;
            let timeout = seconds(timeout);
            match command.as_str() {
                "start" => Request::Start { service, timeout },
                "stop" => Request::Stop { service, timeout },
                _ => Request::Restart { service, timeout },
            }
        }
        "signal" => {
            allowed(&["--json"])?;
            match rest {
                [service, signal] => Request::Signal {
                    service: service.clone(),
                    signal: signal.clone(),
                },
                _ => {
                    return Err(
                        "signal needs a service name and a signal, e.g. signal web HUP".to_owned(),
                    );
                }
            }
        }
        "wait" => {
            allowed(&["--state", "--restarts", "--timeout", "--json"])?;
            let service = one_name("wait")?;
            let state = state.ok_or("wait needs --state STATE, e.g. wait web --state ready")?;
            Request::Wait {
                service,
                state,
                restarts,
                timeout: seconds(timeout),
            }
        }
        "shutdown" => {
            allowed(&["--exit-code", "--json"])?;
            if !rest.is_empty() {
                return Err("shutdown takes no service name".to_owned());
            }
            Request::Shutdown { exit_code }
        }
        "events" => {
            allowed(&["--follow", "--json"])?;
            if !rest.is_empty() {
                return Err("events takes no service name".to_owned());
            }
            Request::Events { follow }
        }
        other => return Err(format!("unknown command '{other}'")),
    };
    Ok(Invocation::Run {
        socket,
        request,
        json,
    })
}

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
        }) => ExitCode::from(run(&socket, &request, json)),
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
    if json {
        print_line(&reply.to_string());
        return Ok(());
    }
    match request {
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

/// `12:34:56.789  web  exited  code=3 ran=0.52` from an event record.
pub fn describe_event(record: &Value) -> String {
    let wall = record["wall"].as_str().unwrap_or("");
    let time = wall.get(11..23).unwrap_or(wall);
    let event = text(&record["event"]);
    let service = record["service"].as_str().unwrap_or("-");
    let mut details = Vec::new();
    if let Value::Object(fields) = record {
        for (key, value) in fields {
            if matches!(key.as_str(), "seq" | "mono" | "wall" | "event" | "service")
                || value.is_null()
            {
                continue;
            }
            details.push(format!("{key}={}", text(value)));
        }
    }
    format!("{time}  {service:<16} {event:<17} {}", details.join(" "))
        .trim_end()
        .to_owned()
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

/// One row of the status table.
pub fn status_row(service: &ServiceStatus) -> String {
    let pid = service.pid.map_or("-".to_owned(), |p| p.to_string());
    let uptime = service.uptime.map_or("-".to_owned(), human_seconds);
    let last_exit = match &service.last_exit {
        None => "-".to_owned(),
        Some(exit) => {
            let how = match (&exit.code, &exit.signal) {
                (_, Some(signal)) => signal.clone(),
                (Some(code), None) => format!("code {code}"),
                (None, None) => "?".to_owned(),
            };
            format!("{how}, {} ago", human_seconds(exit.ago))
        }
    };
    let next = service
        .next_restart_in
        .map_or("-".to_owned(), |s| format!("in {}", human_seconds(s)));
    let state = if service.wanted || service.state != StateName::Down {
        service.state.to_string()
    } else {
        "down".to_owned()
    };
    format!(
        "{:<16} {:<9} {:>7} {:>8} {:>8}  {:<28} {}",
        service.name, state, pid, uptime, service.restarts, last_exit, next
    )
}

/// `850ms`, `12.3s`, `4m05s`, `2h03m`.
pub fn human_seconds(seconds: f64) -> String {
    if seconds < 1.0 {
        format!("{}ms", (seconds * 1000.0).round() as u64)
    } else if seconds < 60.0 {
        format!("{seconds:.1}s")
    } else if seconds < 3600.0 {
        let s = seconds as u64;
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        let s = seconds as u64;
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
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
    use super::*;

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
            }),
            next_restart_in: Some(75.0),
            next_restart_at: None,
        };
        let row = status_row(&status);
        assert!(row.starts_with("web              backoff"), "{row}");
        assert!(row.contains("SIGSEGV, 250ms ago"), "{row}");
        assert!(row.ends_with("in 1m15s"), "{row}");
        assert_eq!(human_seconds(12.34), "12.3s");
        assert_eq!(human_seconds(7380.0), "2h03m");
    }
}
