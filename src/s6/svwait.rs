//! `s6-svwait [-u|-U|-d|-D|-r|-R] [-a|-o] [-t ms] DIR...`: blocks until the services are
//! up (the default), up and ready, down, down with `finish` done, or restarted; all of
//! them (`-a`, the default) or one (`-o`). Event-driven, as s6's: it never polls.
//!
//! Exit codes are s6's: 0 reached, 99 timed out, 100 usage, 102 pidvisor went away,
//! 111 no such service or a system call failed, N when waiting for up and N services
//! failed (or finished) for good instead.

use std::ffi::OsString;
use std::time::{Duration, Instant};

use super::servicedir::{Unresolved, service_name};
use super::talk::{Failure, Link};
use super::watch::{Outcome, Want, Watch};
use super::{NOT_SUPERVISED, SYSTEM, USAGE, fatal, getopt};

const PROG: &str = "s6-svwait";
const USAGE_LINE: &str =
    "s6-svwait [ -U | -u | -D | -d | -r | -R ] [ -a | -o ] [ -t timeout ] servicedir...";
const TIMED_OUT: u8 = 99;

#[derive(Debug, PartialEq)]
struct Invocation {
    want: Want,
    any: bool,
    timeout: Option<Duration>,
    dirs: Vec<String>,
}

pub fn main(args: Vec<OsString>, env: impl Fn(&str) -> Option<String>) -> u8 {
    let invocation = match parse(args) {
        Ok(invocation) => invocation,
        Err(message) => return fatal(PROG, USAGE, &format!("{message}; usage: {USAGE_LINE}")),
    };
    if invocation.dirs.is_empty() {
        return 0;
    }
    let deadline = invocation.timeout.map(|t| Instant::now() + t);
    // Subscribed before the snapshot: a change between the two is in both.
    let prepared = Watch::subscribe(&env).and_then(|watch| {
        let snapshot = Link::connect(&env)?.statuses()?;
        Ok((watch, snapshot))
    });
    let (watch, snapshot) = match prepared {
        Ok(prepared) => prepared,
        Err(err) => return failed(&err),
    };
    let known: Vec<&str> = snapshot.iter().map(|s| s.name.as_str()).collect();
    let mut names = Vec::new();
    for dir in &invocation.dirs {
        match service_name(dir, &known) {
            Ok(name) => names.push(name),
            Err(Unresolved::Missing(message) | Unresolved::NotSupervised(message)) => {
                return fatal(PROG, SYSTEM, &message);
            }
        }
    }
    match watch.wait(&names, invocation.want, invocation.any, &snapshot, deadline) {
        Ok(Outcome::Reached) => 0,
        Ok(Outcome::GaveUp(n)) => fatal(
            PROG,
            u8::try_from(n).unwrap_or(u8::MAX),
            &format!("{n} of the services failed for good instead of coming up"),
        ),
        Err(err) => failed(&err),
    }
}

fn failed(err: &Failure) -> u8 {
    let code = match err {
        Failure::TimedOut => TIMED_OUT,
        Failure::NotListening(_) => SYSTEM,
        Failure::System(message) if message.contains("closed the connection") => NOT_SUPERVISED,
        _ => SYSTEM,
    };
    fatal(PROG, code, err.message())
}

fn parse(args: Vec<OsString>) -> Result<Invocation, String> {
    let parsed = getopt::parse(args, "uUdDrRaot", "t")?;
    let mut invocation = Invocation {
        want: Want::Up,
        any: false,
        timeout: None,
        dirs: parsed.operands,
    };
    for (letter, value) in parsed.options {
        match letter {
            'u' => invocation.want = Want::Up,
            'U' => invocation.want = Want::Ready,
            'd' => invocation.want = Want::Down,
            'D' => invocation.want = Want::DownAndFinished,
            'r' => invocation.want = Want::Restarted,
            'R' => invocation.want = Want::RestartedAndReady,
            'a' => invocation.any = false,
            'o' => invocation.any = true,
            't' => {
                let value = value.unwrap_or_default();
                let ms: u64 = value
                    .parse()
                    .map_err(|_| format!("-t {value}: a timeout in milliseconds"))?;
                invocation.timeout = (ms > 0).then(|| Duration::from_millis(ms));
            }
            other => return Err(format!("unknown option -{other}")),
        }
    }
    Ok(invocation)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_to_wait_for() {
        let parse_words = |w: &[&str]| parse(w.iter().map(OsString::from).collect());
        let invocation = parse_words(&["-U", "-t", "5000", "/var/run/s6/services/a", "b"]).unwrap();
        assert_eq!(
            invocation,
            Invocation {
                want: Want::Ready,
                any: false,
                timeout: Some(Duration::from_millis(5000)),
                dirs: vec!["/var/run/s6/services/a".into(), "b".into()],
            }
        );
        assert!(parse_words(&["-o", "-d", "x"]).unwrap().any);
        assert_eq!(parse_words(&["-t0", "x"]).unwrap().timeout, None);
        assert!(
            parse_words(&["-t", "soon", "x"])
                .unwrap_err()
                .contains("milliseconds")
        );
        assert!(
            parse_words(&["-x", "x"])
                .unwrap_err()
                .contains("unknown option")
        );
    }
}
