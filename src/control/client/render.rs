//! pidvisor's replies turned into text for people: an event as one line, a service as one
//! row of the status table, durations as `850ms`, `12.3s`, `4m05s`, `2h03m`. Pure.

use serde_json::Value;

use crate::control::protocol::{ServiceStatus, StateName};

/// `12:34:56.789  web  exited  code=3 ran=0.52` from an event record.
pub fn describe_event(record: &Value) -> String {
    let wall = record["wall"].as_str().unwrap_or("");
    let time = wall.get(11..23).unwrap_or(wall);
    let event = text(&record["event"]);
    let service = record["service"].as_str().unwrap_or("-");
    let mut details = Vec::new();
    if let Value::Object(fields) = record {
        for (key, value) in fields {
            if matches!(key.as_str(), "seq" | "mono" | "wall" | "event" | "service")
                || value.is_null()
            {
                continue;
            }
            details.push(format!("{key}={}", text(value)));
        }
    }
    format!("{time}  {service:<16} {event:<17} {}", details.join(" "))
        .trim_end()
        .to_owned()
}

/// One row of the status table.
pub fn status_row(service: &ServiceStatus) -> String {
    let pid = service.pid.map_or("-".to_owned(), |p| p.to_string());
    let uptime = service.uptime.map_or("-".to_owned(), human_seconds);
    let last_exit = match &service.last_exit {
        None => "-".to_owned(),
        Some(exit) => {
            let how = match (&exit.code, &exit.signal) {
                (_, Some(signal)) => signal.clone(),
                (Some(code), None) => format!("code {code}"),
                (None, None) => "?".to_owned(),
            };
            format!("{how}, {} ago", human_seconds(exit.ago))
        }
    };
    let next = service
        .next_restart_in
        .map_or("-".to_owned(), |s| format!("in {}", human_seconds(s)));
    let state = if service.health.as_deref() == Some("unhealthy") {
        "unhealthy".to_owned()
    } else if service.wanted || service.state != StateName::Down {
        service.state.to_string()
    } else {
        "down".to_owned()
    };
    format!(
        "{:<16} {:<9} {:>7} {:>8} {:>8}  {:<28} {}",
        service.name, state, pid, uptime, service.restarts, last_exit, next
    )
}

/// `850ms`, `12.3s`, `4m05s`, `2h03m`.
pub fn human_seconds(seconds: f64) -> String {
    if seconds < 1.0 {
        format!("{}ms", (seconds * 1000.0).round() as u64)
    } else if seconds < 60.0 {
        format!("{seconds:.1}s")
    } else if seconds < 3600.0 {
        let s = seconds as u64;
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        let s = seconds as u64;
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    }
}

pub(super) fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}
