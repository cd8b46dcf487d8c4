//! The control protocol, version 1: one JSON object per line each way. Pure: parsing and
//! rendering only, no I/O, so that it is unit-tested directly and other tools can follow
//! the README's reference of it.
//!
//! A request is `{"v":1,"cmd":"status","services":["web"]}` (`v` may be left out; any
//! other version is refused). A reply is `{"v":1,"ok":true,...}` or
//! `{"v":1,"ok":false,"error":"unknown_service","message":"..."}`; `error` is a stable
//! code to match on, `message` a sentence for people.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::services::service::State;

/// Where the control socket listens unless told otherwise (`pidvisorctl` looks there too).
pub const DEFAULT_SOCKET: &str = "/run/pidvisor/control.sock";

/// The protocol version this pidvisor speaks.
pub const VERSION: u64 = 1;

/// Request timeouts must be shorter than this many seconds (about 31 years).
pub const MAX_TIMEOUT: f64 = 1e9;

/// The longest request line accepted, newline included.
pub const MAX_REQUEST: usize = 4096;

/// What a client asks for.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// The services named (all if none), in the supervisor's order.
    Status {
        #[serde(default)]
        services: Vec<String>,
    },
    /// Want it up; reply once it is ready (or cannot be).
    Start {
        service: String,
        #[serde(default)]
        timeout: Option<f64>,
    },
    /// Want it down, whatever its restart policy; reply once it is down.
    Stop {
        service: String,
        #[serde(default)]
        timeout: Option<f64>,
    },
    /// Stop it, start it again; reply once the new run is ready.
    Restart {
        service: String,
        #[serde(default)]
        timeout: Option<f64>,
    },
    /// Send a signal to the service's process group; reply once sent.
    Signal { service: String, signal: String },
    /// Reply once the service is in `state` (and, if given, has been restarted at least
    /// `restarts` times).
    Wait {
        service: String,
        state: StateName,
        #[serde(default)]
        restarts: Option<u32>,
        #[serde(default)]
        timeout: Option<f64>,
    },
    /// Shut the container down (with this exit code, if given).
    Shutdown {
        #[serde(default)]
        exit_code: Option<u8>,
    },
    /// The recent events, then (with `follow`) every new one as it happens.
    Events {
        #[serde(default)]
        follow: bool,
    },
    /// Whether the services named (every wanted one if none) are ready and healthy, and
    /// the container is not draining or shutting down: the answer to a health check.
    Health {
        #[serde(default)]
        services: Vec<String>,
    },
    /// Whether the loop answers at all, and where the container is in its life.
    Ping,
}

/// A state as the protocol names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StateName {
    Down,
    Starting,
    Ready,
    Stopping,
    Finishing,
    Backoff,
    Failed,
    Finished,
}

impl StateName {
    pub const ALL: [StateName; 8] = [
        StateName::Down,
        StateName::Starting,
        StateName::Ready,
        StateName::Stopping,
        StateName::Finishing,
        StateName::Backoff,
        StateName::Failed,
        StateName::Finished,
    ];

    pub fn of(state: &State) -> StateName {
        match state {
            State::Down => StateName::Down,
            State::Starting { .. } => StateName::Starting,
            State::Ready { .. } => StateName::Ready,
            State::Stopping { .. } => StateName::Stopping,
            State::Finishing { .. } => StateName::Finishing,
            State::Backoff { .. } => StateName::Backoff,
            State::Failed => StateName::Failed,
            State::Finished => StateName::Finished,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StateName::Down => "down",
            StateName::Starting => "starting",
            StateName::Ready => "ready",
            StateName::Stopping => "stopping",
            StateName::Finishing => "finishing",
            StateName::Backoff => "backoff",
            StateName::Failed => "failed",
            StateName::Finished => "finished",
        }
    }
}

impl fmt::Display for StateName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StateName {
    type Err = String;

    fn from_str(text: &str) -> Result<StateName, String> {
        StateName::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = StateName::ALL.iter().map(|s| s.as_str()).collect();
                format!("'{text}' is not a state; use one of {}", names.join(", "))
            })
    }
}

/// One service in a status reply. Times are in seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub name: String,
    pub state: StateName,
    /// False once stopped by hand (or by a `down` file): no restart policy applies.
    pub wanted: bool,
    pub pid: Option<i32>,
    /// How long the current run has lasted.
    pub uptime: Option<f64>,
    pub restarts: u32,
    pub last_exit: Option<LastExit>,
    /// In `backoff`: seconds until the next start, and its wall-clock time.
    pub next_restart_in: Option<f64>,
    pub next_restart_at: Option<String>,
    /// With a liveness check: `healthy`, `unhealthy` or `unknown` (not checked yet in this
    /// run), and the last check's result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check: Option<LastCheck>,
}

/// The last liveness check: passed or not, what it said, seconds since.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastCheck {
    pub ok: bool,
    pub message: String,
    pub ago: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastExit {
    pub code: Option<i32>,
    pub signal: Option<String>,
    /// Wall-clock time of the exit (RFC 3339) and seconds since.
    pub at: String,
    pub ago: f64,
    /// Killed by the OOM killer (only written when true).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub oom_killed: bool,
}

/// Stable error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// Not JSON, not an object, an unknown command or field, a missing field.
    BadRequest,
    UnsupportedVersion,
    /// A request line longer than [`MAX_REQUEST`]; the connection is closed.
    TooLong,
    UnknownService,
    /// A signal name or number that does not exist.
    BadSignal,
    /// `signal` to a service that is not running.
    NotRunning,
    /// The awaited state was not reached within the timeout.
    Timeout,
    /// The service ended up in a state from which the goal cannot be reached by itself
    /// (e.g. `failed` while starting).
    Unreachable,
    /// The container is shutting down: services are not started any more.
    ShuttingDown,
    /// The peer's uid is neither root nor pidvisor's own; the connection is closed.
    PermissionDenied,
    /// Too many clients at once; the connection is closed.
    Busy,
    /// No complete request within the idle timeout; the connection is closed.
    IdleTimeout,
    /// An event follower did not read fast enough; the connection is closed.
    Overflow,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::UnsupportedVersion => "unsupported_version",
            ErrorCode::TooLong => "too_long",
            ErrorCode::UnknownService => "unknown_service",
            ErrorCode::BadSignal => "bad_signal",
            ErrorCode::NotRunning => "not_running",
            ErrorCode::Timeout => "timeout",
            ErrorCode::Unreachable => "unreachable",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::PermissionDenied => "permission_denied",
            ErrorCode::Busy => "busy",
            ErrorCode::IdleTimeout => "idle_timeout",
            ErrorCode::Overflow => "overflow",
        }
    }
}

/// A refused request: a stable code and a sentence.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
    /// The service's state when it matters (timeouts, unreachable goals).
    pub state: Option<StateName>,
}

impl Refusal {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
            state: None,
        }
    }
}

/// Parses one request line (without or with its newline).
pub fn parse_request(line: &[u8]) -> Result<Request, Refusal> {
    let bad = |message: String| Refusal::new(ErrorCode::BadRequest, message);
    let text = std::str::from_utf8(line).map_err(|_| bad("the request is not UTF-8".into()))?;
    let value: Value = serde_json::from_str(text.trim_end_matches(['\n', '\r']))
        .map_err(|e| bad(format!("the request is not valid JSON: {e}")))?;
    let Value::Object(mut object) = value else {
        return Err(bad(
            "the request must be a JSON object like {\"cmd\":\"status\"}".into(),
        ));
    };
    match object.remove("v") {
        None => {}
        Some(v) if v.as_u64() == Some(VERSION) => {}
        Some(v) => {
            return Err(Refusal::new(
                ErrorCode::UnsupportedVersion,
                format!(
                    "protocol version {v} is not supported; this pidvisor speaks version {VERSION}"
                ),
            ));
        }
    }
    if !object.contains_key("cmd") {
        return Err(bad(
            "the request has no \"cmd\"; use status, health, ping, start, stop, restart, signal, wait, shutdown or events".into(),
        ));
    }
    let request: Request = serde_json::from_value(Value::Object(object))
        .map_err(|e| bad(format!("invalid request: {e}")))?;
    let timeout = match &request {
        Request::Start { timeout, .. }
        | Request::Stop { timeout, .. }
        | Request::Restart { timeout, .. }
        | Request::Wait { timeout, .. } => *timeout,
        _ => None,
    };
    if timeout.is_some_and(|t| !(0.0..MAX_TIMEOUT).contains(&t)) {
        return Err(bad(format!(
            "\"timeout\" must be a number of seconds, 0 or more and less than {MAX_TIMEOUT}"
        )));
    }
    Ok(request)
}

/// Renders a request as a line (what `pidvisorctl` sends).
pub fn render_request(request: &Request) -> String {
    let mut object = Map::new();
    let mut put = |key: &str, value: Value| {
        object.insert(key.into(), value);
    };
    match request {
        Request::Status { services } => {
            put("cmd", json!("status"));
            put("services", json!(services));
        }
        Request::Start { service, timeout }
        | Request::Stop { service, timeout }
        | Request::Restart { service, timeout } => {
            let cmd = match request {
                Request::Start { .. } => "start",
                Request::Stop { .. } => "stop",
                _ => "restart",
            };
            put("cmd", json!(cmd));
            put("service", json!(service));
            if let Some(timeout) = timeout {
                put("timeout", json!(timeout));
            }
        }
        Request::Signal { service, signal } => {
            put("cmd", json!("signal"));
            put("service", json!(service));
            put("signal", json!(signal));
        }
        Request::Wait {
            service,
            state,
            restarts,
            timeout,
        } => {
            put("cmd", json!("wait"));
            put("service", json!(service));
            put("state", json!(state));
            if let Some(restarts) = restarts {
                put("restarts", json!(restarts));
            }
            if let Some(timeout) = timeout {
                put("timeout", json!(timeout));
            }
        }
        Request::Shutdown { exit_code } => {
            put("cmd", json!("shutdown"));
            if let Some(code) = exit_code {
                put("exit_code", json!(code));
            }
        }
        Request::Events { follow } => {
            put("cmd", json!("events"));
            put("follow", json!(follow));
        }
        Request::Health { services } => {
            put("cmd", json!("health"));
            put("services", json!(services));
        }
        Request::Ping => put("cmd", json!("ping")),
    }
    request_line(object)
}

/// A request: `{"v":1,` then its fields.
fn request_line(object: Map<String, Value>) -> String {
    let body = Value::Object(object).to_string();
    format!("{{\"v\":{VERSION},{}\n", &body[1..])
}

/// `{"v":1,"ok":true, ...fields}` as a line (`v` and `ok` first, the fields sorted).
pub fn ok(fields: Value) -> String {
    let head = format!("{{\"v\":{VERSION},\"ok\":true");
    match fields {
        Value::Object(fields) if !fields.is_empty() => {
            let body = Value::Object(fields).to_string();
            format!("{head},{}\n", &body[1..])
        }
        _ => format!("{head}}}\n"),
    }
}

/// `{"v":1,"ok":false,"error":CODE,"message":...}` as a line.
pub fn error(refusal: &Refusal) -> String {
    let mut fields = Map::new();
    fields.insert("message".into(), json!(refusal.message));
    if let Some(state) = refusal.state {
        fields.insert("state".into(), json!(state));
    }
    let body = Value::Object(fields).to_string();
    format!(
        "{{\"v\":{VERSION},\"ok\":false,\"error\":\"{}\",{}\n",
        refusal.code.as_str(),
        &body[1..]
    )
}

#[cfg(test)]
mod fuzz;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Request, Refusal> {
        parse_request(text.as_bytes())
    }

    fn code(text: &str) -> ErrorCode {
        match parse(text) {
            Err(refusal) => refusal.code,
            Ok(request) => panic!("{text} parsed as {request:?}"),
        }
    }

    #[test]
    fn parses_every_command() {
        assert_eq!(
            parse(r#"{"v":1,"cmd":"status"}"#),
            Ok(Request::Status { services: vec![] })
        );
        assert_eq!(
            parse(r#"{"cmd":"status","services":["a","b"]}"#),
            Ok(Request::Status {
                services: vec!["a".into(), "b".into()]
            })
        );
        assert_eq!(
            parse("{\"cmd\":\"start\",\"service\":\"web\",\"timeout\":2.5}\n"),
            Ok(Request::Start {
                service: "web".into(),
                timeout: Some(2.5)
            })
        );
        assert_eq!(
            parse(r#"{"cmd":"stop","service":"web"}"#),
            Ok(Request::Stop {
                service: "web".into(),
                timeout: None
            })
        );
        assert!(matches!(
            parse(r#"{"cmd":"restart","service":"web"}"#),
            Ok(Request::Restart { .. })
        ));
        assert_eq!(
            parse(r#"{"cmd":"signal","service":"web","signal":"HUP"}"#),
            Ok(Request::Signal {
                service: "web".into(),
                signal: "HUP".into()
            })
        );
        assert_eq!(
            parse(r#"{"cmd":"wait","service":"web","state":"backoff","restarts":2}"#),
            Ok(Request::Wait {
                service: "web".into(),
                state: StateName::Backoff,
                restarts: Some(2),
                timeout: None
            })
        );
        assert_eq!(
            parse(r#"{"cmd":"shutdown","exit_code":3}"#),
            Ok(Request::Shutdown { exit_code: Some(3) })
        );
        assert_eq!(
            parse(r#"{"cmd":"events","follow":true}"#),
            Ok(Request::Events { follow: true })
        );
    }

    #[test]
    fn every_rendered_request_parses_back() {
        let requests = [
            Request::Status {
                services: vec!["x".into()],
            },
            Request::Start {
                service: "a".into(),
                timeout: Some(1.0),
            },
            Request::Stop {
                service: "a".into(),
                timeout: None,
            },
            Request::Restart {
                service: "a".into(),
                timeout: Some(0.5),
            },
            Request::Signal {
                service: "a".into(),
                signal: "USR1".into(),
            },
            Request::Wait {
                service: "a".into(),
                state: StateName::Failed,
                restarts: Some(3),
                timeout: Some(10.0),
            },
            Request::Shutdown { exit_code: None },
            Request::Events { follow: false },
            Request::Health {
                services: vec!["a".into()],
            },
            Request::Ping,
        ];
        for request in requests {
            let line = render_request(&request);
            assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
            assert_eq!(parse(&line), Ok(request));
        }
    }

    #[test]
    fn refuses_malformed_requests_with_a_code() {
        assert_eq!(code("status"), ErrorCode::BadRequest);
        assert_eq!(code("[1,2]"), ErrorCode::BadRequest);
        assert_eq!(code("{}"), ErrorCode::BadRequest);
        assert_eq!(code(r#"{"cmd":"reboot"}"#), ErrorCode::BadRequest);
        assert_eq!(code(r#"{"cmd":"start"}"#), ErrorCode::BadRequest);
        assert_eq!(
            code(r#"{"cmd":"status","verbose":true}"#),
            ErrorCode::BadRequest
        );
        assert_eq!(
            code(r#"{"cmd":"wait","service":"a","state":"sleeping"}"#),
            ErrorCode::BadRequest
        );
        assert_eq!(
            code(r#"{"cmd":"start","service":"a","timeout":-1}"#),
            ErrorCode::BadRequest
        );
        assert_eq!(
            code(r#"{"cmd":"shutdown","exit_code":300}"#),
            ErrorCode::BadRequest
        );
        assert_eq!(
            code(r#"{"v":2,"cmd":"status"}"#),
            ErrorCode::UnsupportedVersion
        );
        assert_eq!(
            parse_request(b"{\"cmd\":\"st\xffatus\"}").map_err(|r| r.code),
            Err(ErrorCode::BadRequest)
        );
    }

    #[test]
    fn replies_are_versioned_lines() {
        assert_eq!(ok(json!({})), "{\"v\":1,\"ok\":true}\n");
        let line = ok(json!({"service": "web", "state": StateName::Ready}));
        assert_eq!(
            line,
            "{\"v\":1,\"ok\":true,\"service\":\"web\",\"state\":\"ready\"}\n"
        );
        let refusal = Refusal {
            code: ErrorCode::Timeout,
            message: "web is backoff".into(),
            state: Some(StateName::Backoff),
        };
        let line = error(&refusal);
        assert!(line.starts_with("{\"v\":1,\"ok\":false,\"error\":\"timeout\","));
        let value: Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(value["ok"], false);
        assert_eq!(value["error"], "timeout");
        assert_eq!(value["state"], "backoff");
    }

    #[test]
    fn state_names_round_trip() {
        for state in StateName::ALL {
            assert_eq!(state.as_str().parse(), Ok(state));
            assert_eq!(
                serde_json::to_string(&state).expect("JSON"),
                format!("\"{state}\"")
            );
        }
        assert!(
            "up".parse::<StateName>()
                .is_err_and(|e| e.contains("ready"))
        );
    }
}
