//! OOM kills made visible: a service or the main command that dies of SIGKILL while the
//! cgroup's OOM-kill count went up since it started was killed by the OOM killer. The
//! `exited` event and `status` say `oom_killed`, the log says so, and a critical service
//! killed so ends the container with 137 at once (Kubernetes reports an OOM kill only for
//! the container's own exit). Where the count cannot be read, nothing is claimed.

use std::time::Instant;

use tracing::error;

use super::state::Supervisor;
use crate::init::oom::OomCounter;
use crate::init::reaper::Exit;

/// The exit code of a process killed by SIGKILL, as shells and orchestrators report it.
pub(super) const OOM_EXIT_CODE: i32 = 137;

/// Whether an exit with this status, of a process started when the count was `baseline`,
/// was the OOM killer's doing.
pub(super) fn oom_killed(counter: &OomCounter, baseline: Option<u64>, exit: Exit) -> bool {
    exit == Exit::Signal(libc::SIGKILL)
        && matches!((baseline, counter.count()), (Some(before), Some(after)) if after > before)
}

impl Supervisor {
    /// Service `index` was OOM-killed: said in the log, and the end of the container if
    /// it is critical.
    pub(super) fn on_service_oom_killed(&mut self, index: usize, now: Instant) {
        let service = &self.slots[index].service;
        error!("{}: killed by the OOM killer", service.name());
        if service.spec.critical {
            error!(
                "{}: critical service killed by the OOM killer: shutting the container down (exit code {OOM_EXIT_CODE})",
                service.name()
            );
            self.exit_code.get_or_insert(OOM_EXIT_CODE);
            self.begin_shutdown(now);
        }
    }
}
