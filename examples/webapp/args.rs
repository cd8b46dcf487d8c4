//! The command line, parsed once at start into a [`Config`]. A mistake gives one line that
//! names the flag and the fix.

use std::ffi::OsString;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::RawFd;
use std::time::Duration;

pub const USAGE: &str = "\
usage: webapp [--listen ADDR:PORT] [--notify-fd N] [--drain DURATION] [--node NAME]
  --listen ADDR:PORT  address to serve on (default 0.0.0.0:8080, or port $WEBAPP_PORT); port 0 picks a free one
  --notify-fd N       once listening, write a newline to descriptor N and close it (s6's readiness protocol)
  --drain DURATION    after SIGTERM, keep serving this long with /health at 503: 3s, 500ms, 1m (default 0)
  --node NAME         the name shown on / (default: the hostname)
  --help              print this help
";

const DEFAULT_PORT: u16 = 8080;

/// What the command line asks for.
#[derive(Debug, PartialEq)]
pub enum Command {
    Serve(Config),
    Help,
}

#[derive(Debug, PartialEq)]
pub struct Config {
    pub listen: SocketAddr,
    pub notify_fd: Option<RawFd>,
    pub drain: Duration,
    /// `None`: the hostname.
    pub node: Option<String>,
}

/// Parses the arguments (without the program name); `port_env` is `$WEBAPP_PORT`, used
/// when there is no `--listen`.
pub fn parse(
    args: impl IntoIterator<Item = OsString>,
    port_env: Option<OsString>,
) -> Result<Command, String> {
    let mut listen = None;
    let mut notify_fd = None;
    let mut drain = None;
    let mut node = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let arg = arg
            .into_string()
            .map_err(|arg| format!("argument {arg:?} is not UTF-8"))?;
        // `--flag value` or `--flag=value`.
        let (flag, inline_value) = match arg.split_once('=') {
            Some((flag, value)) => (flag, Some(value.to_owned())),
            None => (arg.as_str(), None),
        };
        if flag == "--help" || flag == "-h" {
            return Ok(Command::Help);
        }
        let slot = match flag {
            "--listen" => &mut listen,
            "--notify-fd" => &mut notify_fd,
            "--drain" => &mut drain,
            "--node" => &mut node,
            _ => {
                return Err(format!(
                    "unknown flag {flag}; webapp --help lists the flags"
                ));
            }
        };
        let value = match inline_value {
            Some(value) => value,
            None => args
                .next()
                .and_then(|value| value.into_string().ok())
                .ok_or_else(|| format!("{flag} needs a value (UTF-8)"))?,
        };
        if slot.replace(value).is_some() {
            return Err(format!("{flag} is given twice; give it once"));
        }
    }
    Ok(Command::Serve(Config {
        listen: match listen {
            Some(text) => parse_listen(&text)?,
            None => default_listen(port_env)?,
        },
        notify_fd: notify_fd.map(|text| parse_fd(&text)).transpose()?,
        drain: match drain {
            Some(text) => parse_duration(&text).map_err(|why| format!("--drain {text}: {why}"))?,
            None => Duration::ZERO,
        },
        node: node
            .map(|name| {
                if name.is_empty() {
                    Err("--node needs a non-empty name".to_owned())
                } else {
                    Ok(name)
                }
            })
            .transpose()?,
    }))
}

fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    text.parse().map_err(|_| {
        format!("--listen {text}: not an address; write IP:PORT, e.g. 0.0.0.0:8080 or [::]:8080")
    })
}

fn default_listen(port_env: Option<OsString>) -> Result<SocketAddr, String> {
    let port = match port_env {
        None => DEFAULT_PORT,
        Some(text) => text
            .to_str()
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| {
                format!(
                    "WEBAPP_PORT={text:?} is not a port number; set it to 0-65535 or pass --listen"
                )
            })?,
    };
    Ok(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)))
}

fn parse_fd(text: &str) -> Result<RawFd, String> {
    text.parse::<RawFd>()
        .ok()
        .filter(|fd| *fd >= 0)
        .ok_or_else(|| format!("--notify-fd {text}: not a descriptor number; write e.g. 3"))
}

/// `500ms`, `3s`, `1.5s`, `2m`, `1h`, or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| "not a duration; write e.g. 500ms, 3s or 1m".to_owned())?;
    let seconds_per_unit = match unit {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("{unit:?} is not a unit; use ms, s, m or h")),
    };
    Duration::try_from_secs_f64(value * seconds_per_unit).map_err(|_| "too long".to_owned())
}
