//! `s6-svstat [-uwNrpgest | -o FIELDS] [-n] DIR`: one service's state, as s6 prints it.
//! Without options, s6's human line (`up (pid 42) 12 seconds, ready 12 seconds`,
//! `down (exitcode 3) 4 seconds, normally up, want up, ready 4 seconds`); with options,
//! the fields asked for, space-separated (`true true`, `42 -1 NA`).
//!
//! pidvisor's states read as s6's: `starting`, `ready` and `stopping` are up (`ready` is
//! ready), the others down; down is ready (to be started) unless `finish` runs. The
//! time since the service became ready is the time it has been up (pidvisor does not
//! report it apart). Exit codes: 0, 1 no such service (s6: "s6-supervise not running"),
//! 100 usage, 111 system call failed.

use std::ffi::OsString;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::servicedir::service_name;
use super::talk::{Failure, Link};
use super::{SYSTEM, USAGE, fatal, getopt};
use crate::control::protocol::{ServiceStatus, StateName};
use crate::init::signals;

const PROG: &str = "s6-svstat";
const USAGE_LINE: &str = "s6-svstat [ -uwNrpgest | -o up,wantedup,normallyup,ready,paused,pid,\
                          pgid,exitcode,signal,signum,updownsince,readysince,updownfor,readyfor ] \
                          [ -n ] servicedir";
/// "s6-supervise not running".
const NOT_SUPERVISED: u8 = 1;

const FIELDS: [&str; 14] = [
    "up",
    "wantedup",
    "normallyup",
    "ready",
    "paused",
    "pid",
    "pgid",
    "exitcode",
    "signal",
    "signum",
    "updownsince",
    "readysince",
    "updownfor",
    "readyfor",
];

pub fn main(args: Vec<OsString>, env: impl Fn(&str) -> Option<String>) -> u8 {
    let (fields, numeric, dir) = match parse(args) {
        Ok(parsed) => parsed,
        Err(message) => return fatal(PROG, USAGE, &format!("{message}; usage: {USAGE_LINE}")),
    };
    let statuses = match Link::connect(&env).and_then(|mut link| link.statuses()) {
        Ok(statuses) => statuses,
        Err(Failure::NotListening(message)) => {
            return fatal(
                PROG,
                NOT_SUPERVISED,
                &format!("unable to read status for {dir}: {message}"),
            );
        }
        Err(err) => return fatal(PROG, SYSTEM, err.message()),
    };
    let known: Vec<&str> = statuses.iter().map(|s| s.name.as_str()).collect();
    let status = match service_name(&dir, &known) {
        Ok(name) => statuses.iter().find(|s| s.name == name),
        Err(_) => None,
    };
    let Some(status) = status else {
        return fatal(
            PROG,
            NOT_SUPERVISED,
            &format!(
                "unable to read status for {dir}: not a service of pidvisor's ({})",
                known.join(", ")
            ),
        );
    };
    let view = View::of(
        status,
        !Path::new(&dir).join("down").exists(),
        SystemTime::now(),
    );
    let line = if fields.is_empty() {
        view.human(numeric)
    } else {
        fields
            .iter()
            .map(|f| view.field(f))
            .collect::<Vec<_>>()
            .join(" ")
    };
    if crate::output::console::print_stdout(&format!("{line}\n")) {
        0
    } else {
        fatal(PROG, SYSTEM, "unable to write to stdout")
    }
}

/// The fields asked for (none: the human line), `-n`, and the service directory.
fn parse(args: Vec<OsString>) -> Result<(Vec<&'static str>, bool, String), String> {
    let parsed = getopt::parse(args, "no:uwNrpgest", "o")?;
    let mut fields = Vec::new();
    let mut numeric = false;
    for (letter, value) in parsed.options {
        let named = match letter {
            'n' => {
                numeric = true;
                continue;
            }
            'o' => {
                for name in value
                    .unwrap_or_default()
                    .split(',')
                    .filter(|f| !f.is_empty())
                {
                    let field = FIELDS
                        .iter()
                        .find(|f| **f == name)
                        .ok_or_else(|| format!("invalid option field: {name}"))?;
                    fields.push(*field);
                }
                continue;
            }
            'u' => "up",
            'w' => "wantedup",
            'N' => "normallyup",
            'r' => "ready",
            'p' => "pid",
            'g' => "pgid",
            'e' => "exitcode",
            's' => "signal",
            't' => "updownfor",
            other => return Err(format!("unknown option -{other}")),
        };
        fields.push(named);
    }
    match <[String; 1]>::try_from(parsed.operands) {
        Ok([dir]) => Ok((fields, numeric, dir)),
        Err(_) => Err("one service directory is needed".to_owned()),
    }
}

/// A service's status in s6's terms.
struct View {
    up: bool,
    wanted_up: bool,
    normally_up: bool,
    ready: bool,
    pid: Option<i32>,
    exit_code: Option<i32>,
    signal: Option<i32>,
    /// Since the last change between up and down.
    for_seconds: u64,
    since: SystemTime,
}

impl View {
    fn of(status: &ServiceStatus, normally_up: bool, now: SystemTime) -> View {
        let up = status.pid.is_some() && status.state != StateName::Finishing;
        let exit = status.last_exit.as_ref().filter(|_| !up);
        let elapsed = if up {
            status.uptime.unwrap_or(0.0)
        } else {
            exit.map_or(0.0, |e| e.ago)
        };
        let elapsed = Duration::try_from_secs_f64(elapsed).unwrap_or_default();
        View {
            up,
            wanted_up: status.wanted,
            normally_up,
            ready: if up {
                matches!(status.state, StateName::Ready | StateName::Stopping)
            } else {
                status.state != StateName::Finishing
            },
            pid: status.pid.filter(|_| up),
            exit_code: exit.map_or(Some(0), |e| e.code).filter(|_| !up),
            signal: exit
                .and_then(|e| e.signal.as_deref())
                .and_then(signals::parse),
            for_seconds: elapsed.as_secs(),
            since: now.checked_sub(elapsed).unwrap_or(now),
        }
    }

    /// s6's summary line.
    fn human(&self, numeric: bool) -> String {
        let mut line = match (self.up, self.signal) {
            (true, _) => format!("up (pid {}) ", self.pid.unwrap_or(-1)),
            (false, Some(signo)) if numeric => format!("down (signal {signo}) "),
            (false, Some(signo)) => format!("down (signal {}) ", signals::name(signo)),
            (false, None) => format!("down (exitcode {}) ", self.exit_code.unwrap_or(0)),
        };
        line.push_str(&format!("{} seconds", self.for_seconds));
        if self.up && !self.normally_up {
            line.push_str(", normally down");
        }
        if !self.up && self.normally_up {
            line.push_str(", normally up");
        }
        if !self.up && self.wanted_up {
            line.push_str(", want up");
        }
        if self.up && !self.wanted_up {
            line.push_str(", want down");
        }
        if self.ready {
            line.push_str(&format!(", ready {} seconds", self.for_seconds));
        }
        line
    }

    fn field(&self, name: &str) -> String {
        let flag = |b: bool| if b { "true" } else { "false" }.to_owned();
        let number = |n: Option<i32>| n.unwrap_or(-1).to_string();
        match name {
            "up" => flag(self.up),
            "wantedup" => flag(self.wanted_up),
            "normallyup" => flag(self.normally_up),
            "ready" => flag(self.up && self.ready),
            "paused" => flag(false),
            "pid" | "pgid" => number(self.pid),
            "exitcode" => number(self.exit_code.filter(|_| self.signal.is_none())),
            "signal" => self.signal.map_or_else(|| "NA".to_owned(), signals::name),
            "signum" => number(self.signal),
            "updownsince" | "readysince" => tai64n(self.since),
            _ => self.for_seconds.to_string(),
        }
    }
}

/// A TAI64N label (`@` and 24 hex digits), as s6 prints times: 2^62 + TAI seconds, then
/// nanoseconds (TAI is 10 seconds ahead of the Unix clock, leap seconds aside).
fn tai64n(at: SystemTime) -> String {
    let since_epoch = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "@{:016x}{:08x}",
        (1u64 << 62) + since_epoch.as_secs() + 10,
        since_epoch.subsec_nanos()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::protocol::LastExit;

    fn status(
        state: StateName,
        pid: Option<i32>,
        wanted: bool,
        exit: Option<(Option<i32>, Option<&str>)>,
    ) -> ServiceStatus {
        ServiceStatus {
            name: "web".into(),
            state,
            wanted,
            pid,
            uptime: pid.map(|_| 12.7),
            restarts: 0,
            last_exit: exit.map(|(code, signal)| LastExit {
                code,
                signal: signal.map(str::to_owned),
                at: String::new(),
                ago: 4.2,
                oom_killed: false,
            }),
            next_restart_in: None,
            next_restart_at: None,
            health: None,
            last_check: None,
        }
    }

    fn human(status: &ServiceStatus, normally_up: bool) -> String {
        View::of(status, normally_up, SystemTime::now()).human(false)
    }

    #[test]
    fn human_lines_read_as_s6_prints_them() {
        let ready = status(StateName::Ready, Some(42), true, None);
        assert_eq!(
            human(&ready, true),
            "up (pid 42) 12 seconds, ready 12 seconds"
        );
        let starting = status(StateName::Starting, Some(42), true, None);
        assert_eq!(
            human(&starting, false),
            "up (pid 42) 12 seconds, normally down"
        );
        let stopped = status(StateName::Down, None, false, Some((None, Some("SIGTERM"))));
        assert_eq!(
            human(&stopped, true),
            "down (signal SIGTERM) 4 seconds, normally up, ready 4 seconds"
        );
        let backoff = status(StateName::Backoff, None, true, Some((Some(3), None)));
        assert_eq!(
            human(&backoff, false),
            "down (exitcode 3) 4 seconds, want up, ready 4 seconds"
        );
        let never = status(StateName::Down, None, false, None);
        assert_eq!(
            human(&never, false),
            "down (exitcode 0) 0 seconds, ready 0 seconds"
        );
        let finishing = status(StateName::Finishing, None, true, Some((Some(1), None)));
        assert_eq!(
            human(&finishing, true),
            "down (exitcode 1) 4 seconds, normally up, want up"
        );
    }

    #[test]
    fn fields_read_as_s6_prints_them() {
        let fields = |s: &ServiceStatus, names: &[&str]| {
            let view = View::of(s, true, SystemTime::now());
            names
                .iter()
                .map(|n| view.field(n))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let ready = status(StateName::Ready, Some(42), true, None);
        assert_eq!(
            fields(&ready, &["up", "ready", "pid", "exitcode", "signal"]),
            "true true 42 -1 NA"
        );
        let killed = status(StateName::Down, None, false, Some((None, Some("SIGTERM"))));
        assert_eq!(
            fields(
                &killed,
                &["up", "ready", "pid", "exitcode", "signal", "signum"]
            ),
            "false false -1 -1 SIGTERM 15"
        );
        let exited = status(StateName::Finished, None, true, Some((Some(0), None)));
        assert_eq!(
            fields(&exited, &["pid", "exitcode", "signal", "wantedup"]),
            "-1 0 NA true"
        );
        assert!(fields(&exited, &["updownsince"]).starts_with("@4000"));
    }

    #[test]
    fn options_map_to_fields() {
        let parse_words = |w: &[&str]| parse(w.iter().map(OsString::from).collect());
        assert_eq!(
            parse_words(&["-upes", "x"]).unwrap().0,
            vec!["up", "pid", "exitcode", "signal"]
        );
        assert_eq!(
            parse_words(&["-o", "up,ready", "x"]).unwrap().0,
            vec!["up", "ready"]
        );
        assert!(
            parse_words(&["-o", "bogus", "x"])
                .unwrap_err()
                .contains("invalid option field: bogus")
        );
        assert!(parse_words(&["x", "y"]).is_err());
        assert!(parse_words(&[]).is_err());
    }
}
