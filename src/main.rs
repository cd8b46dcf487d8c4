//! pidvisor: a minimal PID 1 for containers.
//!
//! `main` reads like a table of contents: take the signals, parse the command line, set up
//! logging, then hand over to the supervisor's event loop. It only turns results into an
//! exit code; everything else lives in a module with one job. Started as `pidvisorctl`,
//! the same binary is the control client instead ([`ctl`]).

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod check;
mod cli;
mod config;
mod control;
mod ctl;
mod duration;
mod events;
mod limits;
mod logging;
mod logs;
mod outlet;
mod probe;
mod reaper;
mod scan;
mod scripts;
mod service;
mod signals;
mod spawn;
mod spec;
mod supervisor;
mod sweep;
mod users;

use std::env;
use std::io::{self, Write};
use std::process::ExitCode;

use cli::Invocation;
use signals::SignalQueue;
use supervisor::Supervisor;

/// Exit code when pidvisor itself cannot start (as tini does).
const SETUP_FAILED: u8 = 1;
/// Exit code for a usage error.
const USAGE_ERROR: u8 = 2;

fn main() -> ExitCode {
    // Under the name pidvisorctl, the binary is the control client: it takes no signals.
    if ctl::invoked_as_ctl(env::args_os().next().as_deref()) {
        return ctl::main(env::args_os().skip(1));
    }
    // First of all, so that no signal sent to a starting container is lost.
    let signals = match SignalQueue::install() {
        Ok(signals) => signals,
        Err(err) => {
            print_stderr(&format!("pidvisor: cannot take signals: {err}\n"));
            return ExitCode::from(SETUP_FAILED);
        }
    };
    let options = match cli::parse(env::args_os().skip(1), |name| env::var(name).ok()) {
        Ok(Invocation::Run(options)) => options,
        Ok(Invocation::Help) => return printed(cli::HELP),
        Ok(Invocation::Version) => {
            return printed(&format!("pidvisor {}\n", env!("CARGO_PKG_VERSION")));
        }
        Ok(Invocation::Check(dir)) => {
            logging::init(cli::LogLevel::Warn, cli::LogFormat::Text);
            return ExitCode::from(clamp_exit_code(check::run_check(&dir)));
        }
        Err(err) => {
            print_stderr(&format!("pidvisor: {err}\n"));
            return ExitCode::from(USAGE_ERROR);
        }
    };
    logging::init(options.log_level, options.log_format);
    match Supervisor::new(signals, &options) {
        Ok(supervisor) => ExitCode::from(clamp_exit_code(supervisor.run())),
        Err(err) => {
            tracing::error!("cannot start: {err}");
            ExitCode::from(SETUP_FAILED)
        }
    }
}

/// Exit codes are one byte; anything else would be a bug, reported as 255, not a panic.
fn clamp_exit_code(code: i32) -> u8 {
    u8::try_from(code).unwrap_or(u8::MAX)
}

/// Writes `text` to stdout; false if stdout does not take it (`print!` would panic on
/// a full disk or a broken pipe).
pub fn print_stdout(text: &str) -> bool {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .is_ok()
}

/// Writes `text` to stderr, if it takes it (`eprint!` would panic otherwise).
pub fn print_stderr(text: &str) {
    let _ = io::stderr().lock().write_all(text.as_bytes());
}

/// The exit code after printing an answer (`--help`, `--version`): 0, or 1 if stdout
/// did not take it.
fn printed(text: &str) -> ExitCode {
    match print_stdout(text) {
        true => ExitCode::SUCCESS,
        false => ExitCode::from(SETUP_FAILED),
    }
}
