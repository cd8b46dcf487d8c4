//! The access log: one line per request on stdout, flushed at once (the format is in
//! main.rs's documentation). stdout carries nothing else, so a log forwarder can ship it
//! line by line.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// One finished request.
pub struct Entry<'a> {
    pub client: Option<IpAddr>,
    pub method: &'a str,
    pub target: &'a str,
    pub status: u16,
    pub bytes: usize,
    pub duration: Duration,
}

/// Set while writing to stdout fails, so that a broken pipe is reported once, not once
/// per request.
static FAILING: AtomicBool = AtomicBool::new(false);

/// Writes the entry's line; a failure is reported on stderr and the request still counts
/// as served.
pub fn write(entry: &Entry<'_>) {
    let line = format_line(entry);
    let mut stdout = io::stdout().lock();
    match stdout
        .write_all(line.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => {
            if FAILING.swap(false, Ordering::Relaxed) {
                tracing::info!("access log: writing to stdout works again");
            }
        }
        Err(e) => {
            if !FAILING.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "access log: writing to stdout failed ({e}); lines are lost until it works again"
                );
            }
        }
    }
}

fn format_line(entry: &Entry<'_>) -> String {
    let client = entry
        .client
        .map_or_else(|| "-".to_owned(), |ip| ip.to_string());
    format!(
        "{client} {} {} {} {} {:.3}\n",
        entry.method,
        escape(entry.target),
        entry.status,
        entry.bytes,
        entry.duration.as_secs_f64() * 1000.0
    )
}

/// The target with spaces and control characters percent-encoded, so that it stays one
/// field of one line.
fn escape(target: &str) -> String {
    let mut escaped = String::with_capacity(target.len());
    for c in target.chars() {
        if c.is_whitespace() || c.is_control() {
            let mut utf8 = [0; 4];
            for byte in c.encode_utf8(&mut utf8).bytes() {
                // Writing to a String cannot fail.
                let _ = write!(escaped, "%{byte:02X}");
            }
        } else {
            escaped.push(c);
        }
    }
    escaped
}
