//! pidvisor's own log, on stderr: short `pidvisor: LEVEL message` lines for people, or one
//! JSON object per line for log collectors.
//!
//! tracing-subscriber formats the lines: its default field formatting (`message key=value`,
//! with the characters a terminal would act on escaped) behind a fixed `pidvisor: LEVEL `
//! prefix, or its flattened JSON event (`timestamp`, `level`, then the fields). Each
//! formatted line is handed whole to [`crate::output::outlet`], so that a stderr nobody
//! reads never blocks pidvisor: the lines wait there up to a bound, beyond which they are
//! dropped and counted (and the event loop says how many in a later line).

use std::fmt;
use std::io;

use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Dispatch, Event, Metadata, Subscriber};
use tracing_subscriber::Layer as _;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

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
    // Fails only if a subscriber is already set, which would be a bug: keep that one.
    let _ = tracing::dispatcher::set_global_default(dispatch(level, format, || OutletWriter));
}

/// The subscriber: `level` and above, in `format`, each line written whole to `writer`.
fn dispatch<W>(level: LogLevel, format: LogFormat, writer: W) -> Dispatch
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        // Plain text even where the examples' `ansi` feature is on (test builds).
        .with_ansi(false)
        // The writer never fails; nothing else may write to stderr behind the outlet.
        .log_internal_errors(false);
    let spanless = Spanless {
        max: level_filter(level),
    };
    match format {
        LogFormat::Text => Dispatch::new(layer.event_format(Text).with_subscriber(spanless)),
        LogFormat::Json => Dispatch::new(
            layer
                .json()
                .flatten_event(true)
                .with_target(false)
                .with_subscriber(spanless),
        ),
    }
}

/// What the fmt layer sits on instead of tracing-subscriber's `Registry`: pidvisor has no
/// spans, so it needs none of the Registry's span storage (whose slab alone takes 32 KiB
/// at start-up). It filters by level and turns every span away, so that the layer is only
/// ever given events (the fmt layer would panic on a span its base does not store; spans
/// reach a subscriber only once enabled, and pidvisor makes none without `tracing`'s
/// macros, which ask first).
struct Spanless {
    max: LevelFilter,
}

impl Subscriber for Spanless {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if self.enabled(metadata) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.is_event() && *metadata.level() <= self.max
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.max)
    }

    // No span is ever enabled; these keep the trait's contract and nothing else.
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {}
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

impl<'a> LookupSpan<'a> for Spanless {
    type Data = tracing_subscriber::registry::Data<'a>;

    fn span_data(&'a self, _: &Id) -> Option<Self::Data> {
        None
    }
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

/// `pidvisor: LEVEL message key=value`: the level unpadded, no timestamp (the container
/// runtime stamps each line), no target (it is always pidvisor).
struct Text;

impl<S, N> FormatEvent<S, N> for Text
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(writer, "pidvisor: {} ", event.metadata().level())?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Hands each line, as tracing-subscriber writes it in one piece, to stderr's outlet: a
/// stderr nobody reads never blocks pidvisor, and lines from pidvisor and its services
/// never mix.
struct OutletWriter;

impl io::Write for OutletWriter {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        crate::output::outlet::write_log_line(line);
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Collects the lines instead of writing them to stderr.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Capture {
        fn write(&mut self, line: &[u8]) -> io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(line);
            Ok(line.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn capture(level: LogLevel, format: LogFormat, body: impl FnOnce()) -> String {
        let lines = Capture::default();
        let writer = lines.clone();
        tracing::dispatcher::with_default(&dispatch(level, format, move || writer.clone()), body);
        let bytes = lines.0.lock().expect("lock").clone();
        String::from_utf8(bytes).expect("utf-8")
    }

    #[test]
    fn text_lines_are_prefixed_with_fields_after_the_message() {
        let out = capture(LogLevel::Debug, LogFormat::Text, || {
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
        let out = capture(LogLevel::Info, LogFormat::Text, || {
            tracing::warn!("bad \x1b[2J name\u{85}");
        });
        assert_eq!(out, "pidvisor: WARN bad \\x1b[2J name\\u{85}\n");
    }

    #[test]
    fn levels_below_the_chosen_one_are_dropped() {
        let out = capture(LogLevel::Warn, LogFormat::Text, || {
            tracing::info!("no");
            tracing::error!("yes");
        });
        assert_eq!(out, "pidvisor: ERROR yes\n");
    }

    #[test]
    fn json_lines_escape_and_type_what_is_odd() {
        let out = capture(LogLevel::Info, LogFormat::Json, || {
            let err = io::Error::other("no \"way\"");
            tracing::error!(r#type = "x", nan = f64::NAN, error = &err as &dyn std::error::Error, tab = ?"\t", "m");
        });
        let (_, rest) = out.split_once(",\"level\"").expect("a level");
        assert_eq!(
            rest,
            ":\"ERROR\",\"message\":\"m\",\"type\":\"x\",\"nan\":null,\
             \"error\":\"no \\\"way\\\"\",\"tab\":\"\\\"\\\\t\\\"\"}\n"
        );
    }

    #[test]
    fn json_lines_are_flat_objects_with_typed_fields() {
        let out = capture(LogLevel::Info, LogFormat::Json, || {
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
}
