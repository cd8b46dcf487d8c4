//! sd_notify towards the host (`NOTIFY_SOCKET`): `READY=1` once the boot is over (the
//! main command has started, or without one, every service wanted at boot is settled),
//! `STOPPING=1` when the shutdown begins, and a `STATUS=` line whenever what pidvisor
//! waits for changes. Nothing is done, at no cost, when the variable is not set.

use tracing::debug;

use super::state::{Main, Stage, Supervisor};
use crate::init::notify::Notifier;

/// What has been told so far.
pub(super) struct SdNotify {
    notifier: Notifier,
    ready_sent: bool,
    stopping_sent: bool,
    status: String,
}

impl SdNotify {
    pub(super) fn new(notifier: Notifier) -> SdNotify {
        SdNotify {
            notifier,
            ready_sent: false,
            stopping_sent: false,
            status: String::new(),
        }
    }
}

impl Supervisor {
    /// Tells the host what changed since the last round, if anything.
    pub(super) fn tend_sd_notify(&mut self) {
        if self.sd_notify.is_none() {
            return;
        }
        let up = matches!(self.stage, Stage::Up);
        let ready = up
            && match self.main {
                Main::Pending => false,
                Main::Absent => self.boot_settled(),
                _ => true,
            };
        let stopping = !matches!(self.stage, Stage::Init { .. } | Stage::Up);
        let status = self.status_line(ready);
        let Some(sd) = &mut self.sd_notify else {
            return;
        };
        let mut message = Vec::new();
        if ready && !sd.ready_sent {
            sd.ready_sent = true;
            message.push("READY=1".to_owned());
        }
        if stopping && !sd.stopping_sent {
            sd.stopping_sent = true;
            message.push("STOPPING=1".to_owned());
        }
        if status != sd.status {
            message.push(format!("STATUS={status}"));
            sd.status = status;
        }
        if message.is_empty() {
            return;
        }
        if let Err(err) = sd.notifier.send(&message.join("\n")) {
            debug!("NOTIFY_SOCKET: {err}");
        }
    }

    /// What pidvisor is doing or waiting for, in one line.
    fn status_line(&self, ready: bool) -> String {
        match self.stage {
            Stage::Init { .. } => return "running the cont-init.d scripts".to_owned(),
            Stage::Up if self.drain.is_some() => return "draining before the stop".to_owned(),
            Stage::Up => {}
            _ => return "shutting down".to_owned(),
        }
        let waiting: Vec<&str> = self
            .slots
            .iter()
            .map(|slot| &slot.service)
            .filter(|service| service.wanted && !service.is_up_for_dependents())
            .map(|service| service.name())
            .collect();
        let wanted = self.slots.iter().filter(|s| s.service.wanted).count();
        let services = if wanted == 1 { "service" } else { "services" };
        match (ready, waiting.is_empty()) {
            (_, true) => format!("up: {wanted} {services} ready"),
            (false, false) => format!("waiting for {} to be ready", waiting.join(", ")),
            (true, false) => format!(
                "up: {} of {wanted} {services} ready; not ready: {}",
                wanted - waiting.len(),
                waiting.join(", ")
            ),
        }
    }
}
