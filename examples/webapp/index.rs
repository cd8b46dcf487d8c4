//! The page at `/`: which node answered, so that round-robin through a load balancer is
//! visible. HTML for a browser, JSON for a script.

use serde::Serialize;

use crate::state::App;

/// What `/` reports; also the JSON document, field for field.
#[derive(Serialize)]
pub struct Status<'a> {
    pub node: &'a str,
    pub address: String,
    /// Views of `/` since start, this one included.
    pub requests: u64,
    /// Requests being handled right now, this one included.
    pub in_flight: usize,
    pub pid: u32,
    pub uptime_seconds: u64,
}

impl Status<'_> {
    /// Counts this view and takes the figures.
    pub fn take(app: &App) -> Status<'_> {
        Status {
            node: &app.node,
            address: app.address.to_string(),
            requests: app.count_page_view(),
            in_flight: app.in_flight.count(),
            pid: std::process::id(),
            uptime_seconds: app.started.elapsed().as_secs(),
        }
    }

    pub fn json(&self) -> String {
        // Serializing plain strings and numbers cannot fail.
        let mut json = serde_json::to_string(self).unwrap_or_default();
        json.push('\n');
        json
    }

    pub fn html(&self) -> String {
        let node = escape_html(self.node);
        format!(
            "<!doctype html>\n\
             <html><head><meta charset=\"utf-8\"><title>webapp on {node}</title></head>\n\
             <body><h1>{node}</h1>\n<table>\n\
             <tr><th>address</th><td>{}</td></tr>\n\
             <tr><th>requests</th><td>{}</td></tr>\n\
             <tr><th>in flight</th><td>{}</td></tr>\n\
             <tr><th>pid</th><td>{}</td></tr>\n\
             <tr><th>uptime</th><td>{} s</td></tr>\n\
             </table></body></html>\n",
            self.address, self.requests, self.in_flight, self.pid, self.uptime_seconds
        )
    }
}

/// Whether an `Accept` header asks for JSON.
pub fn wants_json(accept: &str) -> bool {
    accept
        .split(',')
        .any(|range| range.split(';').next().map(str::trim) == Some("application/json"))
}

fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            _ => escaped.push(c),
        }
    }
    escaped
}
