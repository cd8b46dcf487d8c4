//! Command-line arguments, parsed into a validated [`Config`]: the rest of the program
//! never sees a raw string. Every error names the flag and what it expects.

use std::ffi::OsString;
use std::time::Duration;

pub const USAGE: &str = "\
usage: logfwd [--to HOST:PORT] [options]
Reads lines on stdin, echoes them to stdout and ships each as an RFC 5424 syslog
message over TCP (RFC 6587 octet counting) to the collector at HOST:PORT.

  --to HOST:PORT         the collector (rsyslog imtcp); HOST is resolved at each connect.
                         Without it, logfwd only echoes (a node with no collector)
  --app NAME             APP-NAME [default: $PIDVISOR_SERVICE without /log, else logfwd]
  --hostname NAME        HOSTNAME [default: this host's name]
  --facility NAME|N      kern, user, daemon, local0..local7, ... [default: user]
  --severity NAME|N      emerg, alert, crit, err, warning, notice, info, debug [default: info]
  --buffer-lines N       lines kept while the collector is unreachable [default: 10000]
  --buffer-bytes N       bytes kept while the collector is unreachable [default: 8388608]
  --max-line N           longer lines are cut to N bytes and marked [default: 65536]
  --flush-timeout DUR    at end of input, how long to keep trying (5s, 500ms) [default: 5s]
  --no-echo              do not copy the lines to stdout
  -h, --help             this text
";

/// Where the collector listens. The host is kept as a name: it is resolved at every
/// connect, so that a collector that moves (a container restarted elsewhere) is found.
#[derive(Debug, Clone)]
pub struct Target {
    pub host: String,
    pub port: u16,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub to: Target,
    pub app: String,
    pub hostname: Option<String>,
    pub facility: u8,
    pub severity: u8,
    pub buffer_lines: usize,
    pub buffer_bytes: usize,
    pub max_line: usize,
    pub flush_timeout: Duration,
    pub echo: bool,
}

pub enum Parsed {
    Run(Config),
    /// No collector: copy stdin to stdout, nothing more.
    EchoOnly,
    Help,
}

const FACILITIES: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];
const SEVERITIES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

/// Parses the arguments (without the program name). `service` is `PIDVISOR_SERVICE`,
/// which pidvisor sets to `<service>/log` for a logger.
pub fn parse(
    args: impl IntoIterator<Item = OsString>,
    service: Option<&str>,
) -> Result<Parsed, String> {
    let mut args = args.into_iter();
    let mut to = None;
    let mut app = None;
    let mut hostname = None;
    let mut facility = 1;
    let mut severity = 6;
    let mut buffer_lines = 10_000;
    let mut buffer_bytes = 8 << 20;
    let mut max_line = 64 << 10;
    let mut flush_timeout = Duration::from_secs(5);
    let mut echo = true;
    while let Some(arg) = args.next() {
        let flag = arg
            .to_str()
            .ok_or_else(|| format!("argument {arg:?} is not UTF-8"))?;
        let mut value = || -> Result<String, String> {
            let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            value
                .into_string()
                .map_err(|v| format!("the value of {flag}, {v:?}, is not UTF-8"))
        };
        match flag {
            "--to" => to = Some(parse_target(&value()?)?),
            "--app" => app = Some(header_field("--app", &value()?, 48)?),
            "--hostname" => hostname = Some(header_field("--hostname", &value()?, 255)?),
            "--facility" => facility = parse_code("--facility", &value()?, &FACILITIES)?,
            "--severity" => severity = parse_code("--severity", &value()?, &SEVERITIES)?,
            "--buffer-lines" => buffer_lines = parse_count("--buffer-lines", &value()?)?,
            "--buffer-bytes" => buffer_bytes = parse_count("--buffer-bytes", &value()?)?,
            "--max-line" => max_line = parse_count("--max-line", &value()?)?,
            "--flush-timeout" => flush_timeout = parse_duration("--flush-timeout", &value()?)?,
            "--no-echo" => echo = false,
            "-h" | "--help" => return Ok(Parsed::Help),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let Some(to) = to else {
        return match echo {
            true => Ok(Parsed::EchoOnly),
            false => Err("--no-echo without --to leaves nothing to do: give --to HOST:PORT".into()),
        };
    };
    let app = match app {
        Some(app) => app,
        None => default_app(service),
    };
    Ok(Parsed::Run(Config {
        to,
        app,
        hostname,
        facility,
        severity,
        buffer_lines,
        buffer_bytes,
        max_line,
        flush_timeout,
        echo,
    }))
}

/// The service whose output this is: `webapp/log` forwards `webapp`'s lines.
fn default_app(service: Option<&str>) -> String {
    let name = service.map(|s| s.strip_suffix("/log").unwrap_or(s));
    match name.map(|n| header_field("PIDVISOR_SERVICE", n, 48)) {
        Some(Ok(name)) => name,
        _ => "logfwd".to_string(),
    }
}

fn parse_target(text: &str) -> Result<Target, String> {
    let fix = "expected HOST:PORT, e.g. logs.example:514 or [::1]:514";
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("--to {text:?}: no port; {fix}"))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/') {
        return Err(format!("--to {text:?}: bad host; {fix}"));
    }
    let port = match port.parse::<u16>() {
        Ok(port) if port != 0 => port,
        _ => return Err(format!("--to {text:?}: bad port {port:?}; {fix}")),
    };
    Ok(Target {
        host: host.to_string(),
        port,
    })
}

/// RFC 5424 header fields are printable US-ASCII without spaces, of bounded length.
fn header_field(flag: &str, text: &str, max: usize) -> Result<String, String> {
    let printable = text.bytes().all(|b| (33..=126).contains(&b));
    if text.is_empty() || text.len() > max || !printable {
        return Err(format!(
            "{flag} {text:?}: expected 1 to {max} printable ASCII characters, no spaces"
        ));
    }
    Ok(text.to_string())
}

fn parse_code(flag: &str, text: &str, names: &[&str]) -> Result<u8, String> {
    if let Some(i) = names.iter().position(|n| *n == text) {
        return Ok(i as u8);
    }
    match text.parse::<u8>() {
        Ok(n) if usize::from(n) < names.len() => Ok(n),
        _ => Err(format!(
            "{flag} {text:?}: expected one of {} or a number below {}",
            names.join(", "),
            names.len()
        )),
    }
}

fn parse_count(flag: &str, text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{flag} {text:?}: expected a positive whole number")),
    }
}

/// `5s`, `500ms` or `0`.
fn parse_duration(flag: &str, text: &str) -> Result<Duration, String> {
    let parsed = if let Some(ms) = text.strip_suffix("ms") {
        ms.parse().ok().map(Duration::from_millis)
    } else if let Some(s) = text.strip_suffix('s') {
        s.parse().ok().map(Duration::from_secs)
    } else if text == "0" {
        Some(Duration::ZERO)
    } else {
        None
    };
    parsed.ok_or_else(|| format!("{flag} {text:?}: expected a duration such as 5s or 500ms"))
}
