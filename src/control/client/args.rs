//! pidvisorctl's command line: its help, and the arguments turned into one [`Request`]
//! (or a usage error that says what is wrong). Pure, and unit-tested with the client.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::control::protocol::{self, DEFAULT_SOCKET, Request, StateName};
use crate::duration::parse_duration;

/// How long start, stop, restart and wait wait by default.
pub(super) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long health and ping take at most, by default (a probe's own timeout is longer).
pub(super) const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

pub const HELP: &str = "\
pidvisorctl: show and drive the services of a running pidvisor.

Usage: pidvisorctl [--socket PATH] COMMAND [ARGS]

Commands:
  status [NAME...] [--json]      state, pid, uptime, restarts, last exit, next restart
  health [NAME...] [--timeout D] exit 0 if every wanted service (or each one named) is
                                 ready and healthy and pidvisor is not draining or
                                 stopping; else 1, with one line per service that is not
                                 (for HEALTHCHECK CMD and exec probes; default timeout 5s)
  ping [--timeout D]             exit 0 if pidvisor's loop answers (liveness of the
                                 container itself); prints its stage (up, draining, ...)
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
nobody listening, permission denied). health and ping exit 1 for anything but a yes
(unhealthy, timed out, no pidvisor), as Docker and Kubernetes expect.
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
        /// The most the whole run may take (health, ping): past it, exit 1.
        within: Option<Duration>,
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
        "health" => {
            allowed(&["--timeout", "--json"])?;
            Request::Health {
                services: rest.to_vec(),
            }
        }
        "ping" => {
            allowed(&["--timeout", "--json"])?;
            if !rest.is_empty() {
                return Err("ping takes no service name".to_owned());
            }
            Request::Ping
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
    let within = match request {
        Request::Health { .. } | Request::Ping => match timeout {
            Some(t) if t.is_zero() => None,
            Some(t) => Some(t),
            None => Some(PROBE_TIMEOUT),
        },
        _ => None,
    };
    Ok(Invocation::Run {
        socket,
        request,
        json,
        within,
    })
}
