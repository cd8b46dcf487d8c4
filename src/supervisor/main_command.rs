//! The main command (`pidvisor -- COMMAND`): started once every service wanted at boot is
//! ready (or has stopped for good), in its own process group with the terminal; its exit
//! starts the shutdown, and its exit code becomes pidvisor's. When nothing was to wait for,
//! set-up has started it (see `setup.rs`), and only a failure to is reported here.

use std::time::Instant;

use tracing::{debug, error, info};

use super::state::{Main, Supervisor};
use crate::init::reaper::Exit;
use crate::init::spawn::Setup;
use crate::init::{signals, spawn};

impl Supervisor {
    pub(super) fn start_main(&mut self, now: Instant) {
        let started = match self.early_main_failure.take() {
            Some(err) => Err(err),
            None => spawn::spawn(&self.command, main_setup(), self.signals.child_reset()),
        };
        match started {
            Ok(pid) => self.main_started(pid),
            Err(err) => {
                error!("{}", err.message);
                self.main = Main::NotStarted {
                    exit_code: err.exit_code,
                };
                self.begin_shutdown(now);
            }
        }
    }

    pub(super) fn main_started(&mut self, pid: i32) {
        debug!(pid, "started main command");
        self.main = Main::Running { pid };
        self.main_oom_baseline = self.oom.count();
    }

    pub(super) fn on_main_exit(&mut self, exit: Exit, now: Instant) {
        self.main = Main::Exited(exit);
        if super::oom::oom_killed(&self.oom, self.main_oom_baseline, exit) {
            error!(
                "main command was killed by the OOM killer (exit code {})",
                super::oom::OOM_EXIT_CODE
            );
        }
        match exit {
            Exit::Code(code) => info!("main command exited with code {code}"),
            Exit::Signal(signo) => info!(
                "main command was killed by {} (exit code {})",
                signals::name(signo),
                exit.exit_code()
            ),
        }
        self.begin_shutdown(now);
    }
}

/// How the main command is started: in its own process group, with the terminal.
pub(super) fn main_setup() -> Setup<'static> {
    Setup {
        take_terminal: true,
        ..Setup::default()
    }
}
