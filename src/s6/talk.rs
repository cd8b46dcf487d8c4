//! Talking to pidvisor for the s6 commands: one request and its reply, the services'
//! status, and the stream of life-cycle events (for the waits). The socket is pidvisor's
//! (`PIDVISOR_SOCKET`, or the default), and the protocol is [`crate::control::protocol`].

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::control::protocol::{self, DEFAULT_SOCKET, Request, ServiceStatus};

/// How long a reply to a request that does not wait may take.
const ANSWER_TIME: Duration = Duration::from_secs(10);

/// Why talking failed.
#[derive(Debug)]
pub enum Failure {
    /// No pidvisor listens on the socket: nothing is supervised.
    NotListening(String),
    /// pidvisor refused the request: its error code and message.
    Refused { code: String, message: String },
    /// No reply, or no event, before the deadline.
    TimedOut,
    /// Anything else (permission denied, a broken connection, a reply that is not JSON).
    System(String),
}

impl Failure {
    pub fn message(&self) -> &str {
        match self {
            Failure::NotListening(message) | Failure::System(message) => message,
            Failure::Refused { message, .. } => message,
            Failure::TimedOut => "timed out",
        }
    }
}

/// The control socket pidvisor listens on.
pub fn socket(env: &impl Fn(&str) -> Option<String>) -> PathBuf {
    env("PIDVISOR_SOCKET")
        .filter(|path| !path.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_SOCKET), PathBuf::from)
}

/// A connection to pidvisor.
pub struct Link {
    reader: BufReader<UnixStream>,
}

impl Link {
    pub fn connect(env: &impl Fn(&str) -> Option<String>) -> Result<Link, Failure> {
        let path = socket(env);
        let stream = UnixStream::connect(&path).map_err(|err| {
            let shown = path.display();
            match err.raw_os_error() {
                Some(libc::ENOENT | libc::ECONNREFUSED) => Failure::NotListening(format!(
                    "pidvisor is not listening on {shown} ({err}): is this container run by \
                     pidvisor? (PIDVISOR_SOCKET says where its socket is)"
                )),
                _ => Failure::System(format!("cannot connect to pidvisor at {shown}: {err}")),
            }
        })?;
        Ok(Link {
            reader: BufReader::new(stream),
        })
    }

    /// Sends `request` and returns the reply, or pidvisor's refusal.
    pub fn ask(&mut self, request: &Request) -> Result<Value, Failure> {
        self.send(request)?;
        self.set_deadline(Some(Instant::now() + ANSWER_TIME))?;
        let reply = self
            .next_line()?
            .ok_or_else(|| Failure::System("pidvisor closed the connection".to_owned()))?;
        if reply["ok"] == Value::Bool(true) {
            return Ok(reply);
        }
        Err(Failure::Refused {
            code: reply["error"].as_str().unwrap_or("refused").to_owned(),
            message: reply["message"].as_str().unwrap_or("refused").to_owned(),
        })
    }

    /// The status of every service.
    pub fn statuses(&mut self) -> Result<Vec<ServiceStatus>, Failure> {
        let reply = self.ask(&Request::Status {
            services: Vec::new(),
        })?;
        serde_json::from_value(reply["services"].clone())
            .map_err(|err| Failure::System(format!("pidvisor's status reply: {err}")))
    }

    /// Turns this connection into a stream of every event from now on (the history that
    /// comes first is skipped); read them with [`Link::next_line`].
    pub fn follow_events(mut self) -> Result<Link, Failure> {
        let header = self.ask(&Request::Events { follow: true })?;
        let history = header["history"].as_u64().unwrap_or(0);
        for _ in 0..history {
            self.next_line()?;
        }
        self.set_deadline(None)?;
        Ok(self)
    }

    /// Reads are given up at `deadline` ([`Failure::TimedOut`]).
    pub fn set_deadline(&mut self, deadline: Option<Instant>) -> Result<(), Failure> {
        let timeout = deadline.map(|d| {
            d.saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1))
        });
        self.reader
            .get_ref()
            .set_read_timeout(timeout)
            .map_err(|err| Failure::System(format!("setsockopt: {err}")))
    }

    fn send(&mut self, request: &Request) -> Result<(), Failure> {
        let line = protocol::render_request(request);
        self.reader
            .get_ref()
            .write_all(line.as_bytes())
            .map_err(|err| Failure::System(format!("talking to pidvisor: {err}")))
    }

    /// The next line as JSON; `None` once pidvisor has closed the connection.
    pub fn next_line(&mut self) -> Result<Option<Value>, Failure> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => Ok(None),
            Ok(_) => serde_json::from_str(&line).map(Some).map_err(|err| {
                Failure::System(format!("pidvisor sent something else than JSON: {err}"))
            }),
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Err(Failure::TimedOut)
            }
            Err(err) => Err(Failure::System(format!("reading from pidvisor: {err}"))),
        }
    }
}
