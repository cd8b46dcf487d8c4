//! The command line, parsed once into checked options: the rest of the program never sees
//! a raw argument. Every mistake is a [`UsageError`] that names the argument and the fix
//! (the caller prints it and exits 2).

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::time::Duration;

use crate::handlers::HandlerSpec;

const DEFAULT_PORT: u16 = 7946;
const DEFAULT_SOCKET: &str = "/run/gossip.sock";
const DEFAULT_HANDLER_TIMEOUT: Duration = Duration::from_secs(10);

/// Name and tags ride in every foca message that names the node (1400 bytes at most, with
/// several members each): they must stay small.
const MAX_IDENTITY_BYTES: usize = 512;

pub const USAGE: &str = "\
gossip: a SWIM membership agent (foca over UDP) with Serf-style event handlers

Usage:
  gossip [agent] [OPTIONS]          run the agent (the default command)
  gossip members [--format table|json] [--socket PATH]
                                    list the members the local agent knows
  gossip --help

Agent options:
  --bind IP:PORT             UDP address to listen on [default: 0.0.0.0:7946]
  --join HOST:PORT           a member to join through; repeatable. Names are resolved on
                             each try; tried with exponential backoff (1 s .. 10 s) until
                             one answers, never giving up
  --advertise IP             the address the others reach this node at [default: the
                             bind address; with 0.0.0.0, the source address the kernel
                             picks towards the first seed, else the first non-loopback
                             address]
  --node NAME                this node's name [default: the hostname]
  --tag KEY=VALUE            a tag gossiped with this node; repeatable (`role` is special:
                             it is SERF_SELF_ROLE and the third column of handler input)
  --event-handler [FILTER=]PROGRAM
                             run `/bin/sh -c PROGRAM` on member events; FILTER is a comma
                             list of member-join, member-leave, member-failed,
                             member-update (default: all); repeatable
  --handler-timeout DURATION a handler still running after this is killed [default: 10s]
  --socket PATH              local socket that `gossip members` asks
                             [default: /run/gossip.sock]
  --notify-fd N              write a newline to descriptor N once joined (at once without
                             --join), s6's readiness protocol

SIGTERM or SIGINT: leave the cluster gracefully (the others see member-leave), exit 0.
";

/// A command line that cannot be run, with what to do about it.
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{} (see `gossip --help`)", self.0)
    }
}

fn usage<T>(message: impl Into<String>) -> Result<T, UsageError> {
    Err(UsageError(message.into()))
}

#[derive(Debug)]
pub enum Command {
    Agent(AgentOptions),
    Members(MembersOptions),
    Help,
}

#[derive(Debug)]
pub struct AgentOptions {
    pub bind: SocketAddr,
    pub joins: Vec<String>,
    pub advertise: Option<IpAddr>,
    pub node: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub handlers: Vec<HandlerSpec>,
    pub handler_timeout: Duration,
    pub socket: PathBuf,
    pub notify_fd: Option<RawFd>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug)]
pub struct MembersOptions {
    pub format: Format,
    pub socket: PathBuf,
}

/// Parses the arguments after the program name.
pub fn parse(args: Vec<String>) -> Result<Command, UsageError> {
    let mut words = Words::new(args);
    match words.peek() {
        Some("members") => {
            words.next();
            parse_members(words)
        }
        Some("agent") => {
            words.next();
            parse_agent(words)
        }
        _ => parse_agent(words),
    }
}

fn parse_agent(mut words: Words) -> Result<Command, UsageError> {
    let mut options = AgentOptions {
        bind: SocketAddr::from((Ipv4Addr::UNSPECIFIED, DEFAULT_PORT)),
        joins: Vec::new(),
        advertise: None,
        node: None,
        tags: BTreeMap::new(),
        handlers: Vec::new(),
        handler_timeout: DEFAULT_HANDLER_TIMEOUT,
        socket: PathBuf::from(DEFAULT_SOCKET),
        notify_fd: None,
    };
    while let Some(flag) = words.flag()? {
        match flag.as_str() {
            "--help" | "-h" => return Ok(Command::Help),
            "--bind" => options.bind = socket_address(&flag, &words.value(&flag)?)?,
            "--join" => options.joins.push(host_port(&words.value(&flag)?)?),
            "--advertise" => {
                let value = words.value(&flag)?;
                options.advertise = Some(value.parse().or_else(|_| {
                    usage(format!(
                        "--advertise {value:?}: not an IP address (e.g. 10.0.0.2)"
                    ))
                })?);
            }
            "--node" => {
                let name = words.value(&flag)?;
                if name.is_empty() {
                    return usage("--node: the name is empty");
                }
                options.node = Some(name);
            }
            "--tag" => {
                let (key, value) = tag(&words.value(&flag)?)?;
                options.tags.insert(key, value);
            }
            "--event-handler" => options
                .handlers
                .push(HandlerSpec::parse(&words.value(&flag)?)?),
            "--handler-timeout" => {
                options.handler_timeout = duration(&flag, &words.value(&flag)?)?;
            }
            "--socket" => options.socket = PathBuf::from(words.value(&flag)?),
            "--notify-fd" => options.notify_fd = Some(descriptor(&words.value(&flag)?)?),
            _ => return usage(format!("unknown option {flag:?} for `gossip agent`")),
        }
    }
    let identity_bytes = options.node.as_ref().map_or(0, String::len)
        + options
            .tags
            .iter()
            .map(|(key, value)| key.len() + value.len() + 2)
            .sum::<usize>();
    if identity_bytes > MAX_IDENTITY_BYTES {
        return usage(format!(
            "--node and --tag add up to {identity_bytes} bytes, more than {MAX_IDENTITY_BYTES}: \
             they travel in every message, keep them short"
        ));
    }
    Ok(Command::Agent(options))
}

fn parse_members(mut words: Words) -> Result<Command, UsageError> {
    let mut options = MembersOptions {
        format: Format::Table,
        socket: PathBuf::from(DEFAULT_SOCKET),
    };
    while let Some(flag) = words.flag()? {
        match flag.as_str() {
            "--help" | "-h" => return Ok(Command::Help),
            "--format" => {
                options.format = match words.value(&flag)?.as_str() {
                    "table" => Format::Table,
                    "json" => Format::Json,
                    other => return usage(format!("--format {other:?}: use table or json")),
                }
            }
            "--socket" => options.socket = PathBuf::from(words.value(&flag)?),
            _ => return usage(format!("unknown option {flag:?} for `gossip members`")),
        }
    }
    Ok(Command::Members(options))
}

/// The arguments, read as `--flag value` or `--flag=value`.
struct Words {
    args: std::vec::IntoIter<String>,
    peeked: Option<String>,
    inline_value: Option<String>,
}

impl Words {
    fn new(args: Vec<String>) -> Words {
        Words {
            args: args.into_iter(),
            peeked: None,
            inline_value: None,
        }
    }

    fn peek(&mut self) -> Option<&str> {
        if self.peeked.is_none() {
            self.peeked = self.args.next();
        }
        self.peeked.as_deref()
    }

    fn next(&mut self) -> Option<String> {
        self.peeked.take().or_else(|| self.args.next())
    }

    /// The next flag, or None at the end. A word that is not a flag is an error: every
    /// option takes the `--name` form.
    fn flag(&mut self) -> Result<Option<String>, UsageError> {
        if let Some(value) = self.inline_value.take() {
            return usage(format!("unexpected value {value:?}"));
        }
        let Some(word) = self.next() else {
            return Ok(None);
        };
        if !word.starts_with('-') {
            return usage(format!("unexpected argument {word:?}"));
        }
        match word.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                self.inline_value = Some(value.to_string());
                Ok(Some(flag.to_string()))
            }
            _ => Ok(Some(word)),
        }
    }

    fn value(&mut self, flag: &str) -> Result<String, UsageError> {
        match self.inline_value.take().or_else(|| self.next()) {
            Some(value) => Ok(value),
            None => usage(format!("{flag} needs a value")),
        }
    }
}

fn socket_address(flag: &str, value: &str) -> Result<SocketAddr, UsageError> {
    value.parse().or_else(|_| {
        usage(format!(
            "{flag} {value:?}: not an IP:PORT address (e.g. 0.0.0.0:7946 or [::]:7946)"
        ))
    })
}

/// `HOST:PORT` where HOST is a name or an address (IPv6 in brackets); names are resolved
/// later, on each join attempt, so that a seed that is not in DNS yet is not an error.
fn host_port(value: &str) -> Result<String, UsageError> {
    let bad = || {
        usage(format!(
            "--join {value:?}: not HOST:PORT (e.g. seed.example:7946 or 10.0.0.2:7946)"
        ))
    };
    let Some((host, port)) = value.rsplit_once(':') else {
        return bad();
    };
    let host_ok = !host.is_empty()
        && (host.parse::<IpAddr>().is_ok()
            || (host.starts_with('[') && host.ends_with(']'))
            || host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_'));
    if !host_ok || port.parse::<u16>().is_err() {
        return bad();
    }
    Ok(value.to_string())
}

fn tag(value: &str) -> Result<(String, String), UsageError> {
    match value.split_once('=') {
        Some((key, tag_value)) if !key.is_empty() => Ok((key.to_string(), tag_value.to_string())),
        _ => usage(format!("--tag {value:?}: not KEY=VALUE (e.g. role=web)")),
    }
}

fn descriptor(value: &str) -> Result<RawFd, UsageError> {
    match value.parse::<RawFd>() {
        Ok(fd) if fd >= 0 => Ok(fd),
        _ => usage(format!(
            "--notify-fd {value:?}: not a file descriptor number"
        )),
    }
}

/// `10s`, `500ms`, `2m` or a plain number of seconds.
fn duration(flag: &str, value: &str) -> Result<Duration, UsageError> {
    let (number, unit) = match value.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(at) => value.split_at(at),
        None => (value, "s"),
    };
    let scale = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        _ => f64::NAN,
    };
    match number.parse::<f64>() {
        Ok(amount) if scale.is_finite() && amount > 0.0 && amount * scale < 86_400.0 => {
            Ok(Duration::from_secs_f64(amount * scale))
        }
        _ => usage(format!(
            "{flag} {value:?}: not a duration up to a day (e.g. 10s, 500ms, 2m)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(words: &[&str]) -> Result<Command, UsageError> {
        parse(words.iter().map(|word| word.to_string()).collect())
    }

    fn agent(words: &[&str]) -> AgentOptions {
        match parse_words(words) {
            Ok(Command::Agent(options)) => options,
            other => panic!("{words:?} gave {other:?}"),
        }
    }

    #[test]
    fn agent_is_the_default_and_takes_both_flag_forms() {
        let options = agent(&[
            "--bind=10.0.0.2:7000",
            "--join",
            "seed:7946",
            "--tag",
            "role=web",
        ]);
        assert_eq!(options.bind, "10.0.0.2:7000".parse().unwrap());
        assert_eq!(options.joins, ["seed:7946"]);
        assert_eq!(options.tags["role"], "web");
        assert_eq!(agent(&["agent"]).socket, PathBuf::from(DEFAULT_SOCKET));
    }

    #[test]
    fn a_tag_value_may_hold_an_equals_sign() {
        assert_eq!(agent(&["--tag", "url=a=b"]).tags["url"], "a=b");
    }

    #[test]
    fn durations_have_units() {
        assert_eq!(
            agent(&["--handler-timeout", "250ms"]).handler_timeout,
            Duration::from_millis(250)
        );
        assert_eq!(
            agent(&["--handler-timeout=3"]).handler_timeout,
            Duration::from_secs(3)
        );
    }

    #[test]
    fn bad_input_is_a_usage_error() {
        for words in [
            &["--frobnicate"][..],
            &["--bind", "localhost"],
            &["--bind", "1.2.3.4:99999"],
            &["--join", "seed"],
            &["--join", "seed:port"],
            &["--tag", "role"],
            &["--tag", "=web"],
            &["--advertise", "host"],
            &["--handler-timeout", "soon"],
            &["--notify-fd", "-1"],
            &["--node"],
            &["members", "--format", "xml"],
            &["stray"],
        ] {
            assert!(parse_words(words).is_err(), "{words:?} was accepted");
        }
    }
}
