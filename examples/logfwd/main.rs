//! logfwd: a service's log forwarder (its `log/run` under pidvisor).
//!
//! It reads lines on stdin, echoes each to stdout (so that `docker logs` still shows
//! them) and ships each as an RFC 5424 syslog message over TCP, framed by octet counting
//! (RFC 6587), to a collector such as rsyslog's `imtcp`:
//!
//! ```text
//! logfwd --to logs.example:514 [--app NAME] [--hostname NAME] [--facility user]
//!        [--severity info] [--buffer-lines 10000] [--buffer-bytes 8388608]
//!        [--max-line 65536] [--flush-timeout 5s] [--no-echo]
//! ```
//!
//! While the collector is unreachable, lines wait in a bounded buffer (the oldest are
//! dropped and counted when it overflows) and the connection is retried with exponential
//! backoff. At end of input (pidvisor closes the pipe at shutdown), SIGTERM or SIGINT it
//! flushes for at most `--flush-timeout`, then exits 0. See `link.rs` for how a line is
//! known to be delivered, and what a collector restart can and cannot cost.
//!
//! The program, file by file: `cli.rs` turns arguments into a [`cli::Config`];
//! `lines.rs` cuts stdin into bounded lines; `syslog.rs` turns a line into a framed
//! message; `backlog.rs` is the bounded buffer; `link.rs` is one TCP connection that
//! remembers what the collector has not acknowledged; `forwarder.rs` is the one loop
//! that ties them together; `sys.rs` holds the two system calls std does not offer.

mod backlog;
mod cli;
mod forwarder;
mod lines;
mod link;
mod sys;
mod syslog;

use std::io::IsTerminal;
use std::process::ExitCode;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let service = std::env::var("PIDVISOR_SERVICE").ok();
    let config = match cli::parse(std::env::args_os().skip(1), service.as_deref()) {
        Ok(cli::Parsed::Run(config)) => config,
        Ok(cli::Parsed::EchoOnly) => return echo_only(),
        Ok(cli::Parsed::Help) => {
            print!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("logfwd: {message} (see logfwd --help)");
            return ExitCode::from(2);
        }
    };
    match forwarder::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            ExitCode::FAILURE
        }
    }
}

/// Without a collector: every line on stdin goes to stdout as it is, until end of input.
fn echo_only() -> ExitCode {
    tracing::info!("no --to: echoing only");
    match std::io::copy(&mut std::io::stdin().lock(), &mut std::io::stdout().lock()) {
        Ok(_) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("echoing stdin to stdout: {err}");
            ExitCode::FAILURE
        }
    }
}
