//! Life-cycle events: what happened to the services and the container, as facts with a
//! sequence number, a monotonic and a wall-clock timestamp, rendered as one JSON object
//! per line.
//!
//! The same line goes to three places: the `PIDVISOR_EVENTS_FILE` (written and flushed
//! line by line from the very first event, so that a test can read it after the container
//! has exited), a bounded ring of the most recent [`HISTORY`] events (what
//! `pidvisorctl events` prints), and every client that follows the stream (fanned out by
//! [`crate::control`]). Events are facts; requests are a separate type
//! ([`crate::control::protocol::Request`]).
//!
//! Times: `mono` is seconds since pidvisor started, from the monotonic clock (the one to
//! compute delays with); `wall` is the UTC time of day in RFC 3339, for people.

use std::collections::VecDeque;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tracing::warn;

/// How many past events `pidvisorctl events` can show.
pub const HISTORY: usize = 1000;

/// One fact about a service or the container. Durations are in seconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// `run` was started.
    Started { service: String, pid: i32 },
    /// It became ready (at once, or by its readiness check).
    Ready { service: String, pid: i32 },
    /// `run` exited: `code` if it exited, `signal` if it was killed.
    Exited {
        service: String,
        pid: i32,
        code: Option<i32>,
        signal: Option<String>,
        /// How long this run lasted.
        ran: f64,
        /// Killed by the OOM killer (only written when true).
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        oom_killed: bool,
    },
    /// `run` could not be executed (126: not executable, 127: not found).
    SpawnFailed {
        service: String,
        code: i32,
        message: String,
    },
    /// It will be started again after `delay` (0: at once). `nominal_delay` is the delay
    /// before `PIDVISOR_TIME_SCALE` (the one configured in service.toml).
    RestartScheduled {
        service: String,
        /// Restarts so far, this one included.
        restarts: u32,
        delay: f64,
        nominal_delay: f64,
        /// When the restart is due, on the `mono` clock: the start comes at or after it.
        due: f64,
    },
    /// It failed `failures` liveness checks in a row (the last said `message`), and is
    /// restarted.
    Unhealthy {
        service: String,
        message: String,
        failures: u32,
    },
    /// It passed a liveness check after having been unhealthy.
    Healthy { service: String },
    /// It gave up: `max_restarts` restarts within the restart window.
    Failed {
        service: String,
        restarts: u32,
        max_restarts: u32,
    },
    /// It exited and its restart policy (or its finish script) says not to restart.
    Finished { service: String },
    /// It was stopped (by `pidvisorctl stop`, or by the shutdown) and is down.
    Stopped { service: String },
    /// A service folder has a problem; the service was left out.
    ConfigProblem { message: String },
    /// Orphans (processes that were not pidvisor's own children) reaped in one go.
    OrphansReaped { count: u64, total: u64 },
    /// A shutdown signal came with `--shutdown-delay`: unhealthy for `delay` seconds,
    /// then the shutdown.
    Draining { signal: String, delay: f64 },
    /// The container's shutdown began (`exit_code`: decided already, if it is).
    Shutdown { exit_code: Option<i32> },
    /// pidvisor exits with this code: the container's exit code.
    Exit { code: i32 },
}

/// Both clocks at pidvisor's start, to turn an [`Instant`] into either timestamp.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
    start_wall: SystemTime,
}

impl Clock {
    pub fn new() -> Clock {
        Clock {
            start: Instant::now(),
            start_wall: SystemTime::now(),
        }
    }

    /// Seconds since pidvisor started, rounded to the microsecond.
    pub fn mono(&self, at: Instant) -> f64 {
        seconds(at.saturating_duration_since(self.start))
    }

    /// The wall-clock time of `at`.
    pub fn wall(&self, at: Instant) -> SystemTime {
        // Checked: `at` may be a deadline far beyond what a SystemTime holds.
        let wall = match at.checked_duration_since(self.start) {
            Some(after) => self.start_wall.checked_add(after),
            None => self.start_wall.checked_sub(self.start.duration_since(at)),
        };
        wall.unwrap_or(self.start_wall)
    }
}

/// A duration in seconds, rounded to the microsecond (so that JSON stays short).
pub fn seconds(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1e6).round() / 1e6
}

/// `2026-11-25T12:34:56.789Z`.
pub fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        since.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day): Howard Hinnant's algorithm.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// An event as written: its number and times, then the event's own fields.
#[derive(Serialize)]
struct Record<'a> {
    seq: u64,
    mono: f64,
    wall: String,
    #[serde(flatten)]
    event: &'a Event,
}

/// Renders one event as a JSON line (with its newline).
pub fn render(seq: u64, clock: &Clock, at: Instant, event: &Event) -> String {
    let record = Record {
        seq,
        mono: clock.mono(at),
        wall: rfc3339(clock.wall(at)),
        event,
    };
    match serde_json::to_string(&record) {
        Ok(mut line) => {
            line.push('\n');
            line
        }
        // Serialising plain strings and numbers cannot fail; say so if it ever does.
        Err(err) => format!("{{\"seq\":{seq},\"event\":\"unrenderable\",\"error\":\"{err}\"}}\n"),
    }
}

/// Numbers, records and keeps the events: the ring and the events file.
pub struct EventLog {
    clock: Clock,
    next_seq: u64,
    /// The last [`HISTORY`] lines, each exactly as long as it is.
    ring: VecDeque<Box<str>>,
    file: Option<File>,
}

impl EventLog {
    /// Opens (creates or truncates) the events file, if one is wanted. A file that cannot
    /// be opened is a warning, never fatal.
    pub fn new(clock: Clock, file: Option<&Path>) -> EventLog {
        // Non-blocking: a FIFO with no reader, or one that stops reading, costs the events
        // file (a warning), never a stalled PID 1. On a regular file it changes nothing.
        let open = |path: &Path| {
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(path)
        };
        let file = file.and_then(|path| match open(path) {
            Ok(file) => Some(file),
            Err(err) => {
                warn!(
                    "cannot write events to {}: {err}; going on without the events file",
                    path.display()
                );
                None
            }
        });
        EventLog {
            clock,
            next_seq: 1,
            // Grows with the history (to HISTORY lines at most), instead of taking room for
            // all of it before the first event.
            ring: VecDeque::new(),
            file,
        }
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Records `event` (happened at `at`) and returns its line, for the followers.
    pub fn record(&mut self, at: Instant, event: &Event) -> &str {
        let line = render(self.next_seq, &self.clock, at, event);
        self.next_seq += 1;
        if let Some(file) = &mut self.file
            && let Err(err) = file.write_all(line.as_bytes())
        {
            warn!("writing the events file: {err}; no more events will be written to it");
            self.file = None;
        }
        if self.ring.len() == HISTORY {
            self.ring.pop_front();
        }
        self.ring.push_back(line.into_boxed_str());
        self.ring.back().map_or("", |line| line)
    }

    /// The recent events, oldest first.
    pub fn history(&self) -> impl ExactSizeIterator<Item = &str> {
        self.ring.iter().map(|line| &**line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wall_time_of_an_instant_beyond_any_systemtime_does_not_panic() {
        let clock = Clock::new();
        // The furthest Instant there is, about i64::MAX seconds of the monotonic clock,
        // is further than the wall clock (already ~1.7e9 s past the epoch) can go.
        let mut far = clock.start;
        let mut step = Duration::from_secs(1 << 62);
        while !step.is_zero() {
            if let Some(later) = far.checked_add(step) {
                far = later;
            }
            step /= 2;
        }
        let _ = rfc3339(clock.wall(far));
        let _ = rfc3339(clock.wall(clock.start + Duration::from_secs(100 * 365 * 86_400)));
    }

    #[test]
    fn renders_one_json_object_per_line_with_both_timestamps() {
        let clock = Clock::new();
        let at = clock.start + Duration::from_micros(1_500_250);
        let line = render(
            7,
            &clock,
            at,
            &Event::Exited {
                service: "web".to_owned(),
                pid: 42,
                code: None,
                signal: Some("SIGSEGV".to_owned()),
                ran: 0.25,
                oom_killed: false,
            },
        );
        assert!(line.ends_with('\n'));
        assert_eq!(line.matches('\n').count(), 1);
        let value: serde_json::Value = serde_json::from_str(&line).expect("valid JSON");
        assert_eq!(value["seq"], 7);
        assert_eq!(value["mono"], 1.50025);
        assert_eq!(value["event"], "exited");
        assert_eq!(value["service"], "web");
        assert_eq!(value["code"], serde_json::Value::Null);
        assert_eq!(value["signal"], "SIGSEGV");
        assert_eq!(value.get("oom_killed"), None, "written only when true");
        assert!(value["wall"].as_str().is_some_and(|w| w.ends_with('Z')));
        assert!(line.starts_with("{\"seq\":7,\"mono\":1.50025,\"wall\":\""));
    }

    #[test]
    fn restart_events_carry_both_delays() {
        let clock = Clock::new();
        let line = render(
            1,
            &clock,
            clock.start,
            &Event::RestartScheduled {
                service: "w".to_owned(),
                restarts: 2,
                delay: 0.004,
                nominal_delay: 0.4,
                due: 1.004,
            },
        );
        let value: serde_json::Value = serde_json::from_str(&line).expect("valid JSON");
        assert_eq!(value["event"], "restart_scheduled");
        assert_eq!(value["delay"], 0.004);
        assert_eq!(value["nominal_delay"], 0.4);
        assert_eq!(value["restarts"], 2);
        assert_eq!(value["due"], 1.004);
    }

    #[test]
    fn wall_time_is_rfc3339_utc() {
        let t = UNIX_EPOCH + Duration::from_millis(1_764_074_096_789);
        assert_eq!(rfc3339(t), "2025-11-25T12:34:56.789Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn an_events_fifo_never_blocks_pidvisor() {
        let dir = std::env::temp_dir().join(format!("pidvisor-events-fifo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("events.fifo");
        let c_path = std::ffi::CString::new(path.to_str().expect("utf-8")).expect("c string");
        // SAFETY: a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let (tx, rx) = std::sync::mpsc::channel();
        let fifo = path.clone();
        std::thread::spawn(move || {
            // No reader: refused at once. A reader that never reads: dropped once full.
            let _ = tx.send(EventLog::new(Clock::new(), Some(&fifo)).file.is_none());
            let reader = open_reader(&fifo);
            let mut log = EventLog::new(Clock::new(), Some(&fifo));
            let opened = log.file.is_some();
            let event = Event::ConfigProblem {
                message: "x".repeat(1000),
            };
            for _ in 0..1000 {
                log.record(Instant::now(), &event);
            }
            let _ = tx.send(opened && log.file.is_none());
            drop(reader);
        });
        let patience = Duration::from_secs(30);
        assert!(rx.recv_timeout(patience).expect("no reader: not blocked"));
        assert!(
            rx.recv_timeout(patience)
                .expect("a stalled reader: not blocked")
        );
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    /// The FIFO's read end, opened without waiting for a writer.
    fn open_reader(path: &Path) -> File {
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .expect("open the FIFO for reading")
    }

    #[test]
    fn the_ring_keeps_the_last_events_in_order_and_the_file_gets_all() {
        let dir = std::env::temp_dir().join(format!("pidvisor-events-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("events.jsonl");
        let mut log = EventLog::new(Clock::new(), Some(&path));
        let now = Instant::now();
        for count in 0..(HISTORY as u64 + 5) {
            let line = log
                .record(
                    now,
                    &Event::OrphansReaped {
                        count,
                        total: count,
                    },
                )
                .to_owned();
            assert!(line.contains(&format!("\"seq\":{}", count + 1)));
        }
        let history: Vec<&str> = log.history().collect();
        assert_eq!(history.len(), HISTORY);
        assert!(history[0].starts_with("{\"seq\":6,"));
        let file = std::fs::read_to_string(&path).expect("events file");
        assert_eq!(file.lines().count(), HISTORY + 5);
        assert!(
            file.lines()
                .next()
                .is_some_and(|l| l.starts_with("{\"seq\":1,"))
        );
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
