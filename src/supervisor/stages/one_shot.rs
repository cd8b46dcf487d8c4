//! The one-shot scripts of the `Init` stage (`cont-init.d`: a failure stops the container
//! unless told to continue) and of the `Finish` stage (`cont-finish.d`: each bounded by
//! the finish timeout), one at a time, in name order.

use std::path::PathBuf;
use std::time::Instant;

use tracing::{debug, error, warn};

use crate::init::reaper::Exit;
use crate::init::spawn::{self, Setup};
use crate::supervisor::exits::describe_exit;
use crate::supervisor::state::{RunningScript, Stage, Supervisor};

impl Supervisor {
    pub(in crate::supervisor) fn start_script(
        &mut self,
        path: PathBuf,
        deadline: Option<Instant>,
        now: Instant,
    ) {
        let argv = [path.clone().into_os_string()];
        match spawn::spawn(&argv, Setup::default(), self.signals.child_reset()) {
            Ok(pid) => {
                debug!("running {}", path.display());
                let script = RunningScript {
                    pid,
                    path,
                    deadline,
                };
                if let Stage::Init { running, .. } | Stage::Finish { running, .. } = &mut self.stage
                {
                    *running = Some(script);
                }
            }
            Err(err) => {
                let exit = Exit::Code(err.exit_code);
                error!("{}", err.message);
                if let Stage::Init { running, .. } | Stage::Finish { running, .. } = &mut self.stage
                {
                    *running = Some(RunningScript {
                        pid: 0,
                        path,
                        deadline: None,
                    });
                }
                self.on_script_exit(exit, now);
            }
        }
    }

    pub(in crate::supervisor) fn on_script_exit(&mut self, exit: Exit, now: Instant) {
        let (Stage::Init { running, .. } | Stage::Finish { running, .. }) = &mut self.stage else {
            return;
        };
        let Some(script) = running.take() else {
            return;
        };
        let in_init = matches!(self.stage, Stage::Init { .. });
        if exit == Exit::Code(0) {
            debug!("{} done", script.path.display());
            return;
        }
        let what = format!("failed ({})", describe_exit(exit));
        if !in_init {
            warn!("{} {what}", script.path.display());
            return;
        }
        if self.init_continue_on_error {
            warn!(
                "{} {what}; going on (init-continue-on-error)",
                script.path.display()
            );
            return;
        }
        error!(
            "{} {what}: stopping the container (fix the script, or set \
             PIDVISOR_INIT_CONTINUE_ON_ERROR=1 to start the services anyway)",
            script.path.display()
        );
        self.exit_code.get_or_insert(match exit.exit_code() {
            0 => 1,
            code => code,
        });
        self.begin_shutdown(now);
    }
}
