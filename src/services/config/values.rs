//! Each value of `service.toml` checked and converted on its own: durations, the restart
//! policy, exit codes, signals, umask, users, the readiness forms. A value that does not
//! pass is an [`Invalid`]: what is wrong and how to fix it; the position is added by the
//! caller, which knows where the value was written.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::duration::parse_duration;
use crate::init::signals;
use crate::services::spec::{Readiness, RestartPolicy};

/// More restarts than this within one window is surely a typo (and each one is remembered).
pub(super) const MAX_RESTARTS_LIMIT: i64 = 1000;

/// A value written either as a string or as an integer: durations (integer = seconds),
/// signals, user and group ids, umask.
#[derive(Debug, Clone)]
pub(super) enum Scalar {
    Text(String),
    Int(i64),
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Text(text) => write!(f, "\"{text}\""),
            Scalar::Int(n) => write!(f, "{n}"),
        }
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Scalar, D::Error> {
        struct ScalarVisitor;
        impl Visitor<'_> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an integer")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Scalar, E> {
                Ok(Scalar::Text(text.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Scalar, E> {
                Ok(Scalar::Int(n))
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// A value that did not pass validation.
pub(super) struct Invalid {
    pub(super) message: String,
    pub(super) fix: String,
}

pub(super) fn invalid(message: impl Into<String>, fix: impl Into<String>) -> Invalid {
    Invalid {
        message: message.into(),
        fix: fix.into(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawReady {
    pub(super) notify_fd: Option<i64>,
    pub(super) tcp: Option<String>,
    pub(super) command: Option<String>,
    pub(super) http: Option<String>,
}

pub(super) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub(super) fn millis(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub(super) fn duration(value: Scalar) -> Result<Duration, Invalid> {
    match value {
        Scalar::Int(n) => u64::try_from(n)
            .map(Duration::from_secs)
            .map_err(|_| invalid(format!("{n} is negative"), "write a duration >= 0")),
        Scalar::Text(text) => {
            parse_duration(&text).map_err(|reason| match reason.split_once("; ") {
                Some((message, fix)) => invalid(message, fix),
                None => invalid(reason, "write e.g. \"500ms\", \"10s\", \"5m\""),
            })
        }
    }
}

pub(super) fn restart_policy(text: String) -> Result<RestartPolicy, Invalid> {
    match text.as_str() {
        "always" => Ok(RestartPolicy::Always),
        "on-failure" => Ok(RestartPolicy::OnFailure),
        "never" => Ok(RestartPolicy::Never),
        _ => Err(invalid(
            format!("\"{text}\" is not a restart policy"),
            "use \"always\", \"on-failure\" or \"never\"",
        )),
    }
}

pub(super) fn exit_code(code: i64) -> Result<i32, Invalid> {
    match i32::try_from(code) {
        Ok(code @ 0..=255) => Ok(code),
        _ => Err(invalid(
            format!("{code} is not an exit code"),
            "use 0 to 255",
        )),
    }
}

pub(super) fn factor(factor: f64) -> Result<f64, Invalid> {
    match factor.is_finite() && factor >= 1.0 {
        true => Ok(factor),
        false => Err(invalid(
            format!("{factor} is less than 1"),
            "use 1.0 (constant delay) or more, e.g. 2.0",
        )),
    }
}

pub(super) fn max_restarts(n: i64) -> Result<u32, Invalid> {
    match n {
        0..=MAX_RESTARTS_LIMIT => Ok(n as u32),
        _ => Err(invalid(
            format!("{n} is out of range"),
            format!("use 0 (never give up) to {MAX_RESTARTS_LIMIT}"),
        )),
    }
}

pub(super) fn signal(value: Scalar) -> Result<i32, Invalid> {
    let signo = match &value {
        Scalar::Text(text) => signals::parse(text),
        Scalar::Int(n) => i32::try_from(*n)
            .ok()
            .and_then(|n| signals::parse(&n.to_string())),
    };
    signo.ok_or_else(|| {
        invalid(
            format!("{value} is not a signal"),
            "use a name like \"TERM\", \"SIGINT\", \"RTMIN+3\" or a number",
        )
    })
}

/// An octal string (`"022"`, `"0o022"`) or an integer (TOML's `0o022`).
pub(super) fn umask(value: Scalar) -> Result<u32, Invalid> {
    let mask = match &value {
        Scalar::Int(n) => u32::try_from(*n).ok(),
        Scalar::Text(text) => {
            let digits = text.strip_prefix("0o").unwrap_or(text);
            u32::from_str_radix(digits, 8).ok()
        }
    };
    mask.filter(|mask| *mask <= 0o777).ok_or_else(|| {
        invalid(
            format!("{value} is not a umask (0 to 0o777)"),
            "write it in octal as a string, e.g. \"022\" or \"0o027\"",
        )
    })
}

/// A name or a numeric id, as text.
pub(super) fn user_or_group(value: Scalar) -> Result<String, Invalid> {
    match value {
        Scalar::Text(text) if text.is_empty() => {
            Err(invalid("is empty", "write a name or a numeric id"))
        }
        Scalar::Text(text) => Ok(text),
        Scalar::Int(n) => u32::try_from(n)
            .map(|id| id.to_string())
            .map_err(|_| invalid(format!("{n} is not an id"), "use 0 to 4294967295")),
    }
}

pub(super) fn notify_fd(fd: i64) -> Result<i32, Invalid> {
    match i32::try_from(fd) {
        Ok(fd) if fd >= 3 => Ok(fd),
        _ => Err(invalid(
            format!("{fd} cannot be a notification fd"),
            "use 3 or more: 0, 1 and 2 are stdin, stdout and stderr",
        )),
    }
}

pub(super) fn readiness(ready: RawReady) -> Result<Readiness, Invalid> {
    let one_of = "give exactly one of notify-fd, tcp, command or http, e.g. ready = { tcp = \"127.0.0.1:8080\" }";
    if let Some(url) = ready.http {
        return match (ready.notify_fd, ready.tcp, ready.command) {
            (None, None, None) => super::health::http_target(&url).map(Readiness::Http),
            _ => Err(invalid("has more than one form", one_of)),
        };
    }
    match (ready.notify_fd, ready.tcp, ready.command) {
        (Some(fd), None, None) => notify_fd(fd).map(Readiness::NotifyFd),
        (None, Some(addr), None) => addr.parse().map(Readiness::Tcp).map_err(|_| {
            invalid(
                format!("\"{addr}\" is not an address and port"),
                "write an IP address and a port, e.g. \"127.0.0.1:8080\" or \"[::1]:8080\"",
            )
        }),
        (None, None, Some(command)) if !command.trim().is_empty() => {
            Ok(Readiness::Command(command))
        }
        (None, None, Some(_)) => Err(invalid("command is empty", one_of)),
        (None, None, None) => Err(invalid("says nothing", one_of)),
        _ => Err(invalid("has more than one form", one_of)),
    }
}
