//! From a request to a [`Reply`]: the endpoints, their parameters and their errors. No
//! I/O here except what an endpoint is for (`/slow` sleeps, `/leak` allocates); ending
//! the process is left to the caller, after it has answered.

use std::thread;
use std::time::Duration;

use nix::sys::signal::Signal;
use tiny_http::Method;

use crate::faults;
use crate::index::{self, Status};
use crate::state::App;

pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    /// What to do once the reply is sent.
    pub then: Then,
}

pub enum Then {
    Continue,
    Exit(i32),
    DieOf(Signal),
}

const TEXT: &str = "text/plain; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";
const JSON: &str = "application/json";

/// The longest `/slow`, in milliseconds.
const MAX_SLOW_MS: u64 = 60_000;

/// Answers `method target`; `accept` is the request's `Accept` header (empty if none).
pub fn route(app: &App, method: &Method, target: &str, accept: &str) -> Reply {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let endpoint: fn(&App, &str, &str) -> Result<Reply, String> = match path {
        "/" => index,
        "/health" => health,
        "/slow" => slow,
        "/leak" => leak,
        "/exit" => exit,
        "/crash" => crash,
        _ => {
            return text(
                404,
                format!(
                    "not found: {path}\nendpoints: / /health /slow?ms=500 /leak?mb=10 \
                     /exit?code=3 /crash?signal=SEGV\n"
                ),
            );
        }
    };
    if !matches!(method, Method::Get | Method::Head) {
        return text(405, format!("{method} is not allowed: use GET or HEAD\n"));
    }
    endpoint(app, query, accept).unwrap_or_else(|message| text(400, format!("{message}\n")))
}

/// `/` and `/health` ignore any query (a cache-buster, say).
fn index(app: &App, _query: &str, accept: &str) -> Result<Reply, String> {
    let status = Status::take(app);
    Ok(if index::wants_json(accept) {
        reply(200, JSON, status.json())
    } else {
        reply(200, HTML, status.html())
    })
}

fn health(app: &App, _query: &str, _accept: &str) -> Result<Reply, String> {
    Ok(if app.is_draining() {
        text(503, "draining\n".to_owned())
    } else {
        text(200, "ok\n".to_owned())
    })
}

fn slow(_app: &App, query: &str, _accept: &str) -> Result<Reply, String> {
    let usage = format!("/slow?ms=MILLISECONDS (0 to {MAX_SLOW_MS})");
    let ms = match parameter(query, "ms", &usage)? {
        None => 1000,
        Some(text) => text
            .parse::<u64>()
            .ok()
            .filter(|ms| *ms <= MAX_SLOW_MS)
            .ok_or_else(|| format!("ms={text} is not a delay; use {usage}"))?,
    };
    thread::sleep(Duration::from_millis(ms));
    Ok(text(200, format!("answered after {ms} ms\n")))
}

fn leak(app: &App, query: &str, _accept: &str) -> Result<Reply, String> {
    let usage = format!("/leak?mb=MIB (1 to {})", faults::MAX_LEAK_MIB);
    let mib = match parameter(query, "mb", &usage)? {
        None => 10,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|mib| (1..=faults::MAX_LEAK_MIB).contains(mib))
            .ok_or_else(|| format!("mb={text} is not a size; use {usage}"))?,
    };
    Ok(match faults::leak(app, mib) {
        Ok(total) => text(200, format!("leaked {mib} MiB, {total} MiB in all\n")),
        Err(why) => text(507, format!("{why}\n")),
    })
}

fn exit(_app: &App, query: &str, _accept: &str) -> Result<Reply, String> {
    let usage = "/exit?code=STATUS (0 to 255)";
    let code = match parameter(query, "code", usage)? {
        None => 1,
        Some(text) => text
            .parse::<u8>()
            .map_err(|_| format!("code={text} is not an exit status; use {usage}"))?,
    };
    let mut reply = text(200, format!("exiting with status {code}\n"));
    reply.then = Then::Exit(code.into());
    Ok(reply)
}

fn crash(_app: &App, query: &str, _accept: &str) -> Result<Reply, String> {
    let usage = "/crash?signal=NAME_OR_NUMBER";
    let signal = match parameter(query, "signal", usage)? {
        None => Signal::SIGSEGV,
        Some(text) => faults::parse_signal(text).map_err(|why| format!("signal={text}: {why}"))?,
    };
    let mut reply = text(200, format!("dying of {signal}\n"));
    reply.then = Then::DieOf(signal);
    Ok(reply)
}

/// The answer when `limit` requests are in flight already.
pub fn busy(limit: usize) -> Reply {
    text(
        503,
        format!("busy: {limit} requests in flight; try again\n"),
    )
}

/// The value of the only parameter an endpoint takes, `None` if absent; any other
/// parameter is a mistake that `usage` helps to fix.
fn parameter<'q>(query: &'q str, name: &str, usage: &str) -> Result<Option<&'q str>, String> {
    let mut value = None;
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        match pair.split_once('=') {
            Some((key, text)) if key == name => value = Some(text),
            _ => return Err(format!("unexpected parameter {pair:?}; use {usage}")),
        }
    }
    Ok(value)
}

fn text(status: u16, body: String) -> Reply {
    reply(status, TEXT, body)
}

fn reply(status: u16, content_type: &'static str, body: String) -> Reply {
    Reply {
        status,
        content_type,
        body,
        then: Then::Continue,
    }
}
