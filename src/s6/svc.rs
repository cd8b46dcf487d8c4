//! `s6-svc [-wu|-wU|-wd|-wD|-wr|-wR] [-T ms] [-s SIG|-abqhkti12pcyPCK] [-uUdDrlx] DIR...`:
//! s6's service control, on pidvisor's services. `-u` and `-d` want the service up or
//! down (pidvisor's start and stop, without waiting), `-r` restarts it if it runs, the
//! signal letters signal it, `-l` sends its `reload-signal` (HUP), `-U` and `-D` also
//! remove or create its `down` file, `-x` is accepted and has nothing to do (there is no
//! per-service supervisor to exit). `-w` waits as `s6-svwait` does, `-T` bounds the wait.
//!
//! Signals go to the service's process group (pidvisor's `signal`), where s6 signals the
//! `run` process only (its `-P`, `-C`, `-K` are the group ones). `-o`, `-O` and `-Q`
//! (run once) are refused: pidvisor's way is `restart = "never"` in service.toml.
//!
//! Exit codes are s6's: 0 done, 99 timed out waiting, 100 usage, 102 not a supervised
//! service, 111 no such folder or a system call failed.

use std::ffi::OsString;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use super::servicedir::{Unresolved, service_name};
use super::talk::{Failure, Link};
use super::watch::{Outcome, Want, Watch};
use super::{NOT_SUPERVISED, SYSTEM, USAGE, fatal, getopt, warn};
use crate::control::protocol::Request;

const PROG: &str = "s6-svc";
const USAGE_LINE: &str = "s6-svc [ -wu | -wU | -wd | -wD | -wr | -wR ] [ -T timeout ] \
                          [ -s signal | -abqhkti12pcyPCK ] [ -uUdDrlx ] servicedir...";
/// Exit code when a `-w` wait timed out (s6-svlisten's).
pub const TIMED_OUT: u8 = 99;

/// A request that does not wait: the shortest timeout there is. The request is carried
/// out at once; a `timeout` reply only says that the service is on its way.
const NO_WAIT: f64 = 1e-6;

/// One command of the command line, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Command {
    Up { remove_down_file: bool },
    Down { create_down_file: bool },
    Restart,
    Reload,
    Signal(&'static str),
    Exit,
}

#[derive(Debug, PartialEq)]
struct Invocation {
    commands: Vec<Command>,
    wait: Option<Want>,
    timeout: Option<Duration>,
    dirs: Vec<String>,
}

pub fn main(args: Vec<OsString>, env: impl Fn(&str) -> Option<String>) -> u8 {
    match parse(args) {
        Ok(invocation) => run(&invocation, &env),
        Err(message) => fatal(PROG, USAGE, &format!("{message}; usage: {USAGE_LINE}")),
    }
}

fn parse(args: Vec<OsString>) -> Result<Invocation, String> {
    let parsed = getopt::parse(args, "abqhkti12pcyPCKsuUdDrlxoOQwT", "swT")?;
    let mut invocation = Invocation {
        commands: Vec::new(),
        wait: None,
        timeout: None,
        dirs: parsed.operands,
    };
    for (letter, value) in parsed.options {
        let value = value.unwrap_or_default();
        let command = match letter {
            'u' => Command::Up {
                remove_down_file: false,
            },
            'U' => Command::Up {
                remove_down_file: true,
            },
            'd' => Command::Down {
                create_down_file: false,
            },
            'D' => Command::Down {
                create_down_file: true,
            },
            'r' => Command::Restart,
            'l' => Command::Reload,
            'x' => Command::Exit,
            's' => Command::Signal(signal_named(&value)?),
            'o' | 'O' | 'Q' => {
                return Err(format!(
                    "-{letter} (run once) is not supported by pidvisor: set restart = \"never\" \
                     in the service's service.toml instead"
                ));
            }
            'w' => {
                invocation.wait = Some(match value.as_str() {
                    "u" => Want::Up,
                    "U" => Want::Ready,
                    "d" => Want::Down,
                    "D" => Want::DownAndFinished,
                    "r" => Want::Restarted,
                    "R" => Want::RestartedAndReady,
                    other => return Err(format!("-w{other}: use -wu, -wU, -wd, -wD, -wr or -wR")),
                });
                continue;
            }
            'T' => {
                let ms: u64 = value
                    .parse()
                    .map_err(|_| format!("-T {value}: a timeout in milliseconds"))?;
                invocation.timeout = (ms > 0).then(|| Duration::from_millis(ms));
                continue;
            }
            signal => Command::Signal(
                signal_of_letter(signal).ok_or_else(|| format!("unknown option -{signal}"))?,
            ),
        };
        invocation.commands.push(command);
    }
    if invocation.dirs.is_empty() {
        return Err("no service directory given".to_owned());
    }
    Ok(invocation)
}

/// The signal of each signal letter (`-P`, `-C`, `-K` are s6's process-group ones;
/// pidvisor always signals the group).
fn signal_of_letter(letter: char) -> Option<&'static str> {
    Some(match letter {
        'a' => "ALRM",
        'b' => "ABRT",
        'q' => "QUIT",
        'h' => "HUP",
        'k' | 'K' => "KILL",
        't' => "TERM",
        'i' => "INT",
        '1' => "USR1",
        '2' => "USR2",
        'p' | 'P' => "STOP",
        'c' | 'C' => "CONT",
        'y' => "WINCH",
        _ => return None,
    })
}

/// `-s SIG`: only the signals that have a letter, as s6 accepts.
fn signal_named(name: &str) -> Result<&'static str, String> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    let by_number = bare.parse::<i32>().ok();
    "abqhkti12pcy"
        .chars()
        .filter_map(signal_of_letter)
        .find(|known| {
            *known == bare
                || by_number.is_some_and(|n| crate::init::signals::parse(known) == Some(n))
        })
        .ok_or_else(|| {
            format!(
                "-s {name}: only ALRM, ABRT, QUIT, HUP, KILL, TERM, INT, USR1, USR2, STOP, CONT \
                 and WINCH can be sent"
            )
        })
}

fn run(invocation: &Invocation, env: &impl Fn(&str) -> Option<String>) -> u8 {
    let (mut link, statuses) = match Link::connect(env).and_then(|mut link| {
        let statuses = link.statuses()?;
        Ok((link, statuses))
    }) {
        Ok(connected) => connected,
        Err(err) => return fail_to_talk(&err),
    };
    let known: Vec<&str> = statuses.iter().map(|s| s.name.as_str()).collect();
    // An error for one folder is reported and the others go on (as s6-svc does); the
    // exit code is the last error's.
    let mut code = 0;
    let mut services = Vec::new();
    for dir in &invocation.dirs {
        match service_name(dir, &known) {
            Ok(name) => services.push((dir.as_str(), name)),
            Err(Unresolved::Missing(message)) => code = fatal(PROG, SYSTEM, &message),
            Err(Unresolved::NotSupervised(message)) => code = fatal(PROG, NOT_SUPERVISED, &message),
        }
    }
    let deadline = invocation.timeout.map(|t| Instant::now() + t);
    let watch = match invocation.wait {
        Some(_) if !services.is_empty() => match Watch::subscribe(env) {
            Ok(watch) => Some(watch),
            Err(err) => return fail_to_talk(&err),
        },
        _ => None,
    };
    for (dir, name) in &services {
        let running = statuses.iter().any(|s| &s.name == name && s.pid.is_some());
        for command in &invocation.commands {
            if let Err(err) = send(&mut link, dir, name, command, running) {
                code = fatal(PROG, SYSTEM, &format!("{name}: {}", err.message()));
            }
        }
    }
    let (Some(watch), Some(want)) = (watch, invocation.wait) else {
        return code;
    };
    let names: Vec<String> = services.into_iter().map(|(_, name)| name).collect();
    let outcome = link
        .statuses()
        .and_then(|snapshot| watch.wait(&names, want, false, &snapshot, deadline));
    match outcome {
        Ok(Outcome::Reached) => code,
        Ok(Outcome::GaveUp(n)) => fatal(
            PROG,
            u8::try_from(n).unwrap_or(u8::MAX),
            &format!("{n} of the services failed for good instead"),
        ),
        Err(Failure::TimedOut) => fatal(PROG, TIMED_OUT, "timed out"),
        Err(err) => fail_to_talk(&err),
    }
}

/// Carries out one command for one service.
fn send(
    link: &mut Link,
    dir: &str,
    name: &str,
    command: &Command,
    running: bool,
) -> Result<(), Failure> {
    let service = name.to_owned();
    let request = match command {
        Command::Up { remove_down_file } => {
            if *remove_down_file {
                remove_down(dir);
            }
            Request::Start {
                service,
                timeout: Some(NO_WAIT),
            }
        }
        Command::Down { create_down_file } => {
            if *create_down_file {
                create_down(dir);
            }
            Request::Stop {
                service,
                timeout: Some(NO_WAIT),
            }
        }
        // As in s6: a service that does not run is left alone.
        Command::Restart if !running => return Ok(()),
        Command::Restart => Request::Restart {
            service,
            timeout: Some(NO_WAIT),
        },
        Command::Reload => {
            let signal = fs::read_to_string(Path::new(dir).join("reload-signal"))
                .map(|text| text.trim().to_owned())
                .unwrap_or_else(|_| "HUP".to_owned());
            Request::Signal { service, signal }
        }
        Command::Signal(signal) => Request::Signal {
            service,
            signal: (*signal).to_owned(),
        },
        Command::Exit => return Ok(()),
    };
    match link.ask(&request) {
        Ok(_) => Ok(()),
        // Under way (a start or stop that does not wait), or nothing to signal (s6 does
        // nothing for a service that is down).
        Err(Failure::Refused { code, .. })
            if matches!(code.as_str(), "timeout" | "unreachable" | "not_running") =>
        {
            Ok(())
        }
        Err(err) => Err(err),
    }
}

fn remove_down(dir: &str) {
    let path = Path::new(dir).join("down");
    if let Err(err) = fs::remove_file(&path)
        && err.kind() != std::io::ErrorKind::NotFound
    {
        warn(PROG, &format!("cannot remove {}: {err}", path.display()));
    }
}

fn create_down(dir: &str) {
    let path = Path::new(dir).join("down");
    if let Err(err) = fs::write(&path, b"") {
        warn(PROG, &format!("cannot create {}: {err}", path.display()));
    }
}

fn fail_to_talk(err: &Failure) -> u8 {
    let code = match err {
        Failure::NotListening(_) => NOT_SUPERVISED,
        Failure::TimedOut => TIMED_OUT,
        _ => SYSTEM,
    };
    fatal(PROG, code, err.message())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(words: &[&str]) -> Result<Invocation, String> {
        parse(words.iter().map(OsString::from).collect())
    }

    #[test]
    fn commands_keep_their_order_and_waits_their_letter() {
        let invocation = parse_words(&["-dwD", "-T", "500", "/run/service/a", "/b"]).unwrap();
        assert_eq!(
            invocation.commands,
            vec![Command::Down {
                create_down_file: false
            }]
        );
        assert_eq!(invocation.wait, Some(Want::DownAndFinished));
        assert_eq!(invocation.timeout, Some(Duration::from_millis(500)));
        assert_eq!(invocation.dirs, vec!["/run/service/a", "/b"]);
        let invocation = parse_words(&["-h", "-s", "sigusr1", "-K", "-ru", "x"]).unwrap();
        assert_eq!(
            invocation.commands,
            vec![
                Command::Signal("HUP"),
                Command::Signal("USR1"),
                Command::Signal("KILL"),
                Command::Restart,
                Command::Up {
                    remove_down_file: false
                }
            ]
        );
        assert_eq!(
            parse_words(&["-s", "15", "x"]).unwrap().commands,
            vec![Command::Signal("TERM")]
        );
    }

    #[test]
    fn what_pidvisor_cannot_do_is_a_usage_error() {
        let err = |words: &[&str]| parse_words(words).unwrap_err();
        assert!(err(&["-O", "x"]).contains("restart = \"never\""));
        assert!(err(&["-s", "SEGV", "x"]).contains("only ALRM"));
        assert!(err(&["-z", "x"]).contains("unknown option -z"));
        assert!(err(&["-wz", "x"]).contains("-wu"));
        assert!(err(&["-u"]).contains("no service directory"));
    }
}
