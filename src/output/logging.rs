//! pidvisor's own log, on stderr: short `pidvisor: LEVEL message` lines for people, or one
//! JSON object per line for log collectors.
//!
//! The lines go through [`crate::output::outlet`], so that a stderr nobody reads never blocks
//! pidvisor: they wait there up to a bound, beyond which they are dropped and counted (and
//! the event loop says how many in a later line).
//!
//! A `tracing` subscriber of its own instead of tracing-subscriber's `fmt` and `json`
//! layers: pidvisor logs from one thread, has no spans, and needs two fixed formats, and
//! those layers (with serde_json, sharded-slab and thread_local behind them) were about a
//! tenth of the static binary. The output is the same as theirs: the text format is
//! tracing-subscriber's default field formatting behind a fixed `pidvisor: LEVEL ` prefix;
//! the JSON one is its flattened event (`timestamp`, `level`, then the fields).

use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Installs the global subscriber. Called once, before the event loop starts.
pub fn init(level: LogLevel, format: LogFormat) {
    let logger = Logger {
        max: level_filter(level),
        json: format == LogFormat::Json,
        #[cfg(test)]
        capture: None,
    };
    // Fails only if a subscriber is already set, which would be a bug: keep that one.
    let _ = tracing::subscriber::set_global_default(logger);
}

fn level_filter(level: LogLevel) -> LevelFilter {
    match level {
        LogLevel::Error => LevelFilter::ERROR,
        LogLevel::Warn => LevelFilter::WARN,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Debug => LevelFilter::DEBUG,
        LogLevel::Trace => LevelFilter::TRACE,
    }
}

struct Logger {
    max: LevelFilter,
    json: bool,
    /// Tests read the lines here instead of stderr.
    #[cfg(test)]
    capture: Option<std::sync::Arc<std::sync::Mutex<String>>>,
}

impl Logger {
    /// One event as one line, newline included.
    fn format(&self, event: &Event<'_>, now: SystemTime) -> String {
        let mut line = String::with_capacity(128);
        let level = event.metadata().level();
        if self.json {
            line.push_str("{\"timestamp\":\"");
            rfc3339(&mut line, now);
            let _ = write!(line, "\",\"level\":\"{level}\"");
            event.record(&mut JsonFields { out: &mut line });
            line.push('}');
        } else {
            let _ = write!(line, "pidvisor: {level} ");
            event.record(&mut TextFields {
                out: &mut line,
                first: true,
            });
        }
        line.push('\n');
        line
    }
}

impl Subscriber for Logger {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if self.enabled(metadata) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= self.max
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.max)
    }

    // pidvisor has no spans; these keep the trait's contract and nothing else.
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let line = self.format(event, SystemTime::now());
        #[cfg(test)]
        if let Some(capture) = &self.capture {
            if let Ok(mut buffer) = capture.lock() {
                buffer.push_str(&line);
            }
            return;
        }
        // One line at a time, through stderr's outlet: a stderr nobody reads never blocks
        // pidvisor, and lines from pidvisor and its services never mix.
        crate::output::outlet::write_log_line(line.as_bytes());
    }
}

/// `message key=value key2=value2`: tracing-subscriber's default field format.
struct TextFields<'a> {
    out: &'a mut String,
    first: bool,
}

impl Visit for TextFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"));
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_debug(field, &format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if !self.first {
            self.out.push(' ');
        }
        self.first = false;
        let _ = match field.name() {
            // Terminal control characters in a message are shown, not obeyed.
            "message" => write!(Escaping(self.out), "{value:?}"),
            name => write!(
                self.out,
                "{}={value:?}",
                name.strip_prefix("r#").unwrap_or(name)
            ),
        };
    }
}

/// Writes through to a String, escaping the characters a terminal would act on.
struct Escaping<'a>(&'a mut String);

impl fmt::Write for Escaping<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for ch in s.chars() {
            match ch {
                '\x1b' | '\x07' | '\x08' | '\x0c' | '\x7f' => {
                    write!(self.0, "\\x{:02x}", ch as u32)?
                }
                '\u{80}'..='\u{9f}' => write!(self.0, "\\u{{{:x}}}", ch as u32)?,
                _ => self.0.push(ch),
            }
        }
        Ok(())
    }
}

/// `,"key":value` for each field: numbers and booleans as such, everything else a string.
struct JsonFields<'a> {
    out: &'a mut String,
}

impl JsonFields<'_> {
    fn key(&mut self, field: &Field) {
        self.out.push(',');
        json_string(
            self.out,
            field.name().strip_prefix("r#").unwrap_or(field.name()),
        );
        self.out.push(':');
    }
}

impl Visit for JsonFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        json_string(self.out, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        let _ = write!(self.out, "{value}");
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        let _ = write!(self.out, "{value}");
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        let _ = write!(self.out, "{value}");
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field);
        if value.is_finite() {
            let _ = write!(self.out, "{value}");
        } else {
            self.out.push_str("null");
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.key(field);
        json_string(self.out, &value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.key(field);
        json_string(self.out, &format!("{value:?}"));
    }
}

/// `s` as a JSON string literal, quotes included.
fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `2026-11-25T12:34:56.123456Z`: UTC with microseconds, as tracing-subscriber writes it.
fn rfc3339(out: &mut String, time: SystemTime) {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's days_from_civil, inverted).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60,
        since.subsec_micros()
    );
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;

    fn capture(level: LogLevel, json: bool, body: impl FnOnce()) -> String {
        let buffer = Arc::new(Mutex::new(String::new()));
        let logger = Logger {
            max: level_filter(level),
            json,
            capture: Some(buffer.clone()),
        };
        tracing::subscriber::with_default(logger, body);
        buffer.lock().expect("lock").clone()
    }

    #[test]
    fn text_lines_are_prefixed_with_fields_after_the_message() {
        let out = capture(LogLevel::Debug, false, || {
            tracing::info!("started {}", "web");
            let exit = Some(1);
            tracing::debug!(pid = 7, signal = %"SIGTERM", name = "x", ?exit, "received");
            tracing::trace!("not shown");
        });
        assert_eq!(
            out,
            "pidvisor: INFO started web\n\
             pidvisor: DEBUG received pid=7 signal=SIGTERM name=\"x\" exit=Some(1)\n"
        );
    }

    #[test]
    fn text_messages_cannot_drive_the_terminal() {
        let out = capture(LogLevel::Info, false, || {
            tracing::warn!("bad \x1b[2J name\u{85}");
        });
        assert_eq!(out, "pidvisor: WARN bad \\x1b[2J name\\u{85}\n");
    }

    #[test]
    fn levels_below_the_chosen_one_are_dropped() {
        let out = capture(LogLevel::Warn, false, || {
            tracing::info!("no");
            tracing::error!("yes");
        });
        assert_eq!(out, "pidvisor: ERROR yes\n");
    }

    #[test]
    fn json_lines_are_flat_objects_with_typed_fields() {
        let out = capture(LogLevel::Info, true, || {
            tracing::info!(
                pid = 7,
                ok = true,
                ratio = 0.5,
                who = "a\"b",
                "said \"hi\"\n"
            );
        });
        let rest = out
            .strip_prefix("{\"timestamp\":\"")
            .expect("starts with the timestamp");
        let (stamp, rest) = rest.split_at(27);
        assert!(
            stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T',
            "{stamp}"
        );
        assert_eq!(
            rest,
            "\",\"level\":\"INFO\",\"message\":\"said \\\"hi\\\"\\n\",\"pid\":7,\
             \"ok\":true,\"ratio\":0.5,\"who\":\"a\\\"b\"}\n"
        );
    }

    #[test]
    fn json_strings_escape_control_characters() {
        let mut out = String::new();
        json_string(&mut out, "a\\b\t\u{1}é");
        assert_eq!(out, "\"a\\\\b\\t\\u0001é\"");
    }

    #[test]
    fn timestamps_are_utc_dates_with_microseconds() {
        let at = |secs: u64, micros: u64| {
            let mut out = String::new();
            rfc3339(
                &mut out,
                UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros),
            );
            out
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.000005Z");
        assert_eq!(at(1_795_609_296, 123_456), "2026-11-25T12:21:36.123456Z");
        assert_eq!(at(4_102_444_799, 999_999), "2099-12-31T23:59:59.999999Z");
    }
}
