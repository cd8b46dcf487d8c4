//! webapp: the example web service of pidvisor's demo cluster, small enough to read in one
//! sitting and complete enough to run behind a load balancer.
//!
//! It answers HTTP/1.1 on `--listen` (default `0.0.0.0:8080`):
//!
//! | request              | answer                                                        |
//! |----------------------|---------------------------------------------------------------|
//! | `GET /`              | node name, address, page counter, requests in flight, pid and uptime; HTML, or JSON with `Accept: application/json` |
//! | `GET /health`        | `200 ok` while serving, `503 draining` from the first SIGTERM on |
//! | `GET /slow?ms=500`   | answers after that many milliseconds (0 to 60000; default 1000) |
//! | `GET /leak?mb=64`    | allocates, touches and keeps that many MiB (1 to 1024; default 10); `507` if it cannot |
//! | `GET /exit?code=3`   | answers, then exits with that status (0 to 255; default 1)    |
//! | `GET /crash?signal=SEGV` | answers, then dies of that signal (a name, with or without `SIG`, or a number; default SEGV) |
//!
//! A bad parameter gets `400` with a message (so does a signal that would not end the
//! process, such as CHLD or STOP), an unknown path `404`, a method other than GET or HEAD
//! `405`, and a request beyond 512 in flight `503`. The last four endpoints are for trying
//! a supervisor's restart policies, memory limits and drain by hand: do not expose them to
//! the internet.
//!
//! **Access log.** One line per request on stdout, written and flushed as the request
//! ends (this is what the log forwarder ships), six fields separated by single spaces:
//!
//! ```text
//! CLIENT_IP METHOD TARGET STATUS BYTES DURATION_MS
//! 127.0.0.1 GET /slow?ms=500 200 29 500.412
//! ```
//!
//! `CLIENT_IP` is `-` when unknown, `TARGET` is the request's path and query with any
//! space or control character percent-encoded, `BYTES` the body bytes sent and
//! `DURATION_MS` the milliseconds from receiving the request to having answered it, with
//! three decimals. The program's own messages go to stderr, through `tracing`.
//!
//! **Readiness.** With `--notify-fd N` it writes a newline to descriptor N once its socket
//! is bound, then closes it (s6's protocol; pidvisor's `ready = { notify-fd = N }`).
//!
//! **Stopping.** On SIGTERM or SIGINT it logs the signal, answers `503` on `/health` at
//! once and keeps serving for `--drain` (so that a load balancer's health checks take the
//! node out first); then it stops accepting connections, finishes every request it has
//! received and exits 0. A second signal cuts the drain short.
//!
//! **Exit status.** 0 after a graceful stop, 1 when it cannot serve (address in use, the
//! listener failed), 2 for a mistake on the command line; `/exit` and `/crash` end it as
//! they say.

mod access_log;
mod args;
mod faults;
mod index;
mod node;
mod readiness;
mod routes;
mod server;
mod shutdown;
mod state;

use std::env;
use std::io::{self, IsTerminal};
use std::process::ExitCode;
use std::sync::Arc;

use args::{Command, Config};

/// Exit status for a mistake on the command line.
const USAGE_ERROR: u8 = 2;

fn main() -> ExitCode {
    let config = match args::parse(env::args_os().skip(1), env::var_os("WEBAPP_PORT")) {
        Ok(Command::Serve(config)) => config,
        Ok(Command::Help) => {
            print!("{}", args::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(message) => return usage_error(&message),
    };
    // Claimed before anything else opens a descriptor, so that a closed N cannot be
    // mistaken for one of our own.
    let notify = match config.notify_fd.map(readiness::claim).transpose() {
        Ok(notify) => notify,
        Err(message) => return usage_error(&message),
    };
    init_logging();
    match run(config, notify) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            ExitCode::FAILURE
        }
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("webapp: {message}");
    ExitCode::from(USAGE_ERROR)
}

/// Our own messages: to stderr, so that stdout carries nothing but the access log.
fn init_logging() {
    tracing_subscriber::fmt()
        .with_writer(io::stderr)
        .with_ansi(io::stderr().is_terminal())
        .with_target(false)
        .init();
}

/// Serves until a signal has stopped it gracefully; `Err` says why it could not serve.
fn run(config: Config, notify: Option<readiness::Notifier>) -> Result<(), String> {
    // Registered before readiness, so that a SIGTERM right after it drains too.
    let signals = shutdown::Signals::register()?;
    let listening = Arc::new(server::Listening::bind(config.listen)?);
    let node = match config.node {
        Some(node) => node,
        None => node::hostname()?,
    };
    let address = node::address(listening.addr());
    tracing::info!(
        "listening on {} as node {node} (address {address}, pid {})",
        listening.addr(),
        std::process::id()
    );
    if let Some(notify) = notify {
        notify.ready()?;
    }
    let app = Arc::new(state::App::new(node, address));
    let watcher = signals.watch(Arc::clone(&app), Arc::clone(&listening), config.drain);
    listening.serve(&app)?;
    // The watcher has stopped the server: that was its last act.
    watcher
        .join()
        .map_err(|_| "the signal watcher failed".to_owned())?;
    // The last reference: dropping it closes the listening socket.
    drop(listening);
    tracing::info!(
        "stopped accepting; finishing {} request(s) in flight",
        app.in_flight.count()
    );
    app.in_flight.wait_until_idle();
    tracing::info!("stopped");
    Ok(())
}
