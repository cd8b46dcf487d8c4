//! A ready service that failed its liveness checks: stopped like any service (stop
//! signal, SIGKILL to its group after `stop-timeout`), and its end counts as a crash,
//! whatever its exit code, for the restart policy, backoff and `max-restarts`.

use std::time::Instant;

use tracing::error;

use super::{Action, Service, State};

impl Service {
    /// It failed its checks too many times in a row: stop it, for a restart.
    pub fn on_unhealthy(&mut self, now: Instant) -> Vec<Action> {
        let State::Ready { pid } = self.state else {
            return Vec::new();
        };
        error!(
            "{}: unhealthy ({} failed checks in a row): restarting it",
            self.name(),
            self.spec.health.as_ref().map_or(0, |h| h.failures)
        );
        self.stopped_unhealthy = true;
        self.signal_stop(Some(pid), pid, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::reaper::Exit;
    use crate::services::spec::{RestartPolicy, ServiceSpec};

    #[test]
    fn an_unhealthy_service_is_stopped_and_its_clean_exit_still_counts_as_a_crash() {
        let t0 = Instant::now();
        let mut service = Service::new(ServiceSpec {
            restart: RestartPolicy::OnFailure,
            ..ServiceSpec::for_tests()
        });
        service.start();
        service.on_spawned(100, t0);
        let actions = service.on_unhealthy(t0);
        assert_eq!(
            actions,
            vec![Action::Signal {
                pgid: 100,
                signo: libc::SIGTERM
            }]
        );
        // It exits 0 on SIGTERM, quickly: on-failure restarts it, after a backoff.
        service.on_exit(Exit::Code(0), true, t0);
        assert!(
            matches!(service.state, State::Backoff { .. }),
            "{:?}",
            service.state
        );
        assert_eq!(service.restarts, 1);
        // The next run is judged on its own.
        service.on_deadline(t0 + std::time::Duration::from_secs(1));
        service.on_spawned(101, t0 + std::time::Duration::from_secs(1));
        service.on_exit(Exit::Code(0), true, t0 + std::time::Duration::from_secs(60));
        assert_eq!(service.state, State::Finished);
        assert!(
            service.on_unhealthy(t0).is_empty(),
            "not ready: nothing to do"
        );
    }
}
