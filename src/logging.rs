//! pidvisor's own log, on stderr: short `pidvisor: LEVEL message` lines for people, or one
//! JSON object per line for log collectors.
//!
//! The lines go through [`crate::outlet`], so that a stderr nobody reads never blocks
//! pidvisor: they wait there up to a bound, beyond which they are dropped and counted (and
//! the event loop says how many in a later line).

use std::fmt;
use std::io;

use tracing::level_filters::LevelFilter;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::cli::{LogFormat, LogLevel};

/// Installs the global subscriber. Called once, before the event loop starts.
pub fn init(level: LogLevel, format: LogFormat) {
    let level = match level {
        LogLevel::Error => LevelFilter::ERROR,
        LogLevel::Warn => LevelFilter::WARN,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Debug => LevelFilter::DEBUG,
        LogLevel::Trace => LevelFilter::TRACE,
    };
    let builder = tracing_subscriber::fmt()
        .with_writer(|| LogWriter)
        .with_max_level(level)
        .with_ansi(false);
    match format {
        LogFormat::Text => builder.event_format(PlainText).init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_target(false)
            .with_current_span(false)
            .init(),
    }
}

/// `pidvisor: WARN message key=value`: no timestamp (the container runtime adds one) and
/// a fixed prefix that tells pidvisor's lines apart from the services' in a mixed stream.
struct PlainText;

impl<S, N> FormatEvent<S, N> for PlainText
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

/// Hands each formatted line to stderr's outlet (tracing writes one event in one call).
struct LogWriter;

impl io::Write for LogWriter {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        crate::outlet::write_log_line(line);
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
