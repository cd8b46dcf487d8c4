//! pidvisor: a minimal PID 1 for containers.
//!
//! `main` reads like a table of contents: which program this is (by the name it was
//! started under: `pidvisorctl` is the control client, `with-contenv`, `s6-svc` and the
//! other s6 names are the s6-overlay commands, anything else is pidvisor), then
//! take the signals, parse the command line, set up logging, and hand over to the
//! supervisor's event loop. It only turns results into an exit code; everything else
//! lives in a module with one job.
//!
//! The source is in layers, each a folder whose `mod.rs` says what it is for and what it
//! may use. Arrows point down: a layer uses only the layers below it, and no two files use
//! each other.
//!
//! ```text
//! main.rs       which program, parse, run
//! supervisor/   the one event loop: the only part that acts (spawns, signals, reaps)
//! cli.rs        pidvisor's command line and environment, parsed into Options
//! s6/           s6-overlay's commands (with-contenv, s6-svc, ...) and runtime folder
//! control/      the control socket: protocol, server side, the pidvisorctl client
//! services/     what to run and how each service's life goes: decides, never acts
//! output/       where text goes: service output, pidvisor's own log, events
//! init/         the PID 1 duties: signals, spawn, reaper, sweep, limits
//! duration.rs   durations and deadlines, used by every layer
//! ```
//!
//! A module too long for one file is a file with a folder of the same name for its parts
//! (`services/config.rs` and `services/config/`).

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod cli;
mod control;
mod duration;
#[cfg(test)]
mod fuzzing;
mod init;
mod output;
mod s6;
mod services;
mod supervisor;

use std::env;
use std::process::ExitCode;

use cli::Invocation;
use control::client;
use init::signals::SignalQueue;
use output::console::{print_stderr, print_stdout};
use output::logging::{self, LogFormat, LogLevel};
use services::check;
use supervisor::Supervisor;

/// Exit code when pidvisor itself cannot start (as tini does).
const SETUP_FAILED: u8 = 1;
/// Exit code for a usage error.
const USAGE_ERROR: u8 = 2;

fn main() -> ExitCode {
    // Under the name pidvisorctl, the binary is the control client, and under an s6 name
    // that s6 command: they take no signals.
    let argv0 = env::args_os().next();
    if client::invoked_as_ctl(argv0.as_deref()) {
        return client::main(env::args_os().skip(1));
    }
    if let Some(tool) = s6::invoked_as(argv0.as_deref()) {
        return s6::main(tool, env::args_os().skip(1).collect());
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
        Ok(Invocation::InstallLinks(dir)) => return s6::links::main(&dir),
        Ok(Invocation::Check(dir)) => {
            logging::init(LogLevel::Warn, LogFormat::Text);
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

/// The exit code after printing an answer (`--help`, `--version`): 0, or 1 if stdout
/// did not take it.
fn printed(text: &str) -> ExitCode {
    match print_stdout(text) {
        true => ExitCode::SUCCESS,
        false => ExitCode::from(SETUP_FAILED),
    }
}
