//! Command-line options of `haproxy-sync`.

use std::path::PathBuf;
use std::time::Duration;

pub const USAGE: &str = "\
usage: haproxy-sync [OPTIONS]   (run by the gossip agent: SERF_EVENT and members on stdin)
  --socket PATH          HAProxy's admin-level runtime socket [/run/haproxy/admin.sock]
  --backend NAME         the backend whose servers follow the cluster [web]
  --role ROLE            only members with this role are servers [web]
  --port PORT            a member's port when it has no `port` tag [8080]
  --config PATH          HAProxy's config file: the servers between its two
                         '# haproxy-sync' marker lines are rewritten to match
  --drain-timeout D      how long a leaving member's sessions may take to end [30s]
  --help
";

/// What the command line asks for.
pub enum Parsed {
    Run(Options),
    Help,
}

/// Where HAProxy is and which members become its servers.
pub struct Options {
    pub socket: PathBuf,
    pub backend: String,
    pub role: String,
    pub port: u16,
    pub config: Option<PathBuf>,
    pub drain_timeout: Duration,
}

pub fn parse(mut args: impl Iterator<Item = String>) -> Result<Parsed, String> {
    let mut options = Options {
        socket: PathBuf::from("/run/haproxy/admin.sock"),
        backend: "web".into(),
        role: "web".into(),
        port: 8080,
        config: None,
        drain_timeout: Duration::from_secs(30),
    };
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Ok(Parsed::Help);
        }
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--socket" => options.socket = value()?.into(),
            "--backend" => options.backend = value()?,
            "--role" => options.role = value()?,
            "--port" => {
                let v = value()?;
                options.port = v
                    .parse()
                    .map_err(|_| format!("--port {v:?}: give a port number (1-65535)"))?;
            }
            "--config" => options.config = Some(value()?.into()),
            "--drain-timeout" => {
                let v = value()?;
                options.drain_timeout = parse_duration(&v).ok_or_else(|| {
                    format!("--drain-timeout {v:?}: give a duration like 30s or 500ms")
                })?;
            }
            _ => return Err(format!("unknown option {flag:?}")),
        }
    }
    Ok(Parsed::Run(options))
}

/// `500ms`, `30s`, `2m`, or a number of seconds.
fn parse_duration(text: &str) -> Option<Duration> {
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let n: u64 = number.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => Some(Duration::from_secs(n.checked_mul(60)?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_duration("s"), None);
        assert_eq!(parse_duration("3h"), None);
    }
}
