//! The validated description of a service: what the rest of pidvisor works with.
//!
//! [`crate::services::config`] turns a service folder and its `service.toml` into a [`ServiceSpec`];
//! nothing else ever sees raw TOML or raw strings for signals, users or durations.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::init::spawn::Credentials;
use crate::services::http_check::HttpTarget;

/// One service, from `services.d/<name>/`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSpec {
    /// The folder name.
    pub name: String,
    /// The service folder, absolute.
    pub dir: PathBuf,
    /// `run`: the long-running program.
    pub run: PathBuf,
    /// `finish`: run after every exit of `run`, with the exit code and signal as arguments.
    pub finish: Option<PathBuf>,
    /// How long `finish` may take before it is killed.
    pub finish_timeout: Duration,
    /// `log/run`: a logger fed with the service's stdout through a pipe.
    pub logger: Option<PathBuf>,
    /// A `down` file: not started at boot.
    pub start_down: bool,
    pub restart: RestartPolicy,
    /// Exit codes that count as success for `restart = "on-failure"`.
    pub success_exit_codes: Vec<i32>,
    pub backoff: Backoff,
    /// When the service has been restarted this many times within `restart_window`, it is
    /// `failed` and stays down. 0 means never give up.
    pub max_restarts: u32,
    pub restart_window: Duration,
    /// Its final failure (or any exit under `restart = "never"` that is not a success)
    /// shuts the container down with a non-zero exit code.
    pub critical: bool,
    pub stop_signal: i32,
    pub stop_timeout: Duration,
    /// Run as this user; `None` keeps pidvisor's own.
    pub user: Option<Credentials>,
    pub working_dir: PathBuf,
    /// Added to (or overriding) the container's environment, in this order.
    pub env: Vec<(String, String)>,
    pub umask: Option<u32>,
    /// Start only after these services are ready; stop before them.
    pub after: Vec<String>,
    pub ready: Readiness,
    pub ready_timeout: Duration,
    /// `health`: checked while it is ready; restarted after too many failures in a row.
    pub health: Option<HealthCheck>,
    /// `health-timeout`: how long one check (liveness, or an HTTP readiness attempt) may
    /// take before it counts as failed (and a command check is killed).
    pub check_timeout: Duration,
    /// Prefix each output line with the service name (`name | line`), or pass bytes through.
    pub log_prefix: bool,
}

impl ServiceSpec {
    /// The spec under `PIDVISOR_TIME_SCALE`: every restart delay (the first, the longest)
    /// and the restart window are multiplied by `scale`, so that the policy plays out the
    /// same, only faster. `stable-after` is not scaled: it is compared with how long the
    /// program really ran, which the scale does not change; nor are the timeouts that
    /// bound real programs (stop, finish, readiness).
    pub fn with_time_scale(mut self, scale: f64) -> ServiceSpec {
        // A product too long for a Duration is as good as never: the longest one.
        let scaled = |d: Duration| {
            Duration::try_from_secs_f64(d.as_secs_f64() * scale).unwrap_or(Duration::MAX)
        };
        self.backoff.initial = scaled(self.backoff.initial);
        self.backoff.max = scaled(self.backoff.max);
        self.restart_window = scaled(self.restart_window);
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

/// Restart delays: a run that lasted `stable_after` or longer restarts at once; each quick
/// crash after that waits `initial`, then `initial * factor`, ... up to `max`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    pub factor: f64,
    pub stable_after: Duration,
    /// Spread each delay randomly over [delay/2, delay] (off by default, so that tests of a
    /// restart policy see exact delays).
    pub jitter: bool,
}

/// When a started service counts as ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// As soon as it has been started.
    Started,
    /// When it writes a newline to this file descriptor (s6's notification-fd protocol).
    NotifyFd(i32),
    /// When a TCP connection to this address succeeds.
    Tcp(SocketAddr),
    /// When this shell command exits 0.
    Command(String),
    /// When an HTTP GET of this URL answers 2xx or 3xx.
    Http(HttpTarget),
}

/// A liveness check (`health = { ... }`, `health-interval`, `health-failures`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    pub check: Check,
    /// Time from the end of one check (or from ready) to the next.
    pub interval: Duration,
    /// Failures in a row after which the service is restarted.
    pub failures: u32,
}

/// What a liveness check does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// Runs this shell command as the service would; exit 0 is healthy.
    Command(String),
    /// Connects to this address.
    Tcp(SocketAddr),
    /// GETs this URL; 2xx or 3xx is healthy.
    Http(HttpTarget),
}

#[cfg(test)]
impl ServiceSpec {
    /// A plain service for unit tests: `/services/web/run`, restarted always, ready once
    /// started, 100 ms to 1 s of backoff.
    pub fn for_tests() -> ServiceSpec {
        ServiceSpec {
            name: "web".to_owned(),
            dir: PathBuf::from("/services/web"),
            run: PathBuf::from("/services/web/run"),
            finish: None,
            finish_timeout: Duration::from_secs(5),
            logger: None,
            start_down: false,
            restart: RestartPolicy::Always,
            success_exit_codes: vec![0],
            backoff: Backoff {
                initial: Duration::from_millis(100),
                max: Duration::from_secs(1),
                factor: 2.0,
                stable_after: Duration::from_secs(10),
                jitter: false,
            },
            max_restarts: 0,
            restart_window: Duration::from_secs(300),
            critical: false,
            stop_signal: libc::SIGTERM,
            stop_timeout: Duration::from_secs(5),
            user: None,
            working_dir: PathBuf::from("/services/web"),
            env: Vec::new(),
            umask: None,
            after: Vec::new(),
            ready: Readiness::Started,
            ready_timeout: Duration::from_secs(30),
            health: None,
            check_timeout: Duration::from_secs(5),
            log_prefix: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_scale_that_overflows_a_duration_gives_the_longest_one() {
        let spec = ServiceSpec {
            backoff: Backoff {
                initial: Duration::from_secs(1),
                max: Duration::from_secs(u64::MAX / 10),
                ..ServiceSpec::for_tests().backoff
            },
            restart_window: Duration::from_secs(u64::MAX / 10),
            ..ServiceSpec::for_tests()
        };
        let scaled = spec.with_time_scale(1000.0);
        assert_eq!(scaled.backoff.initial, Duration::from_secs(1000));
        assert_eq!(scaled.backoff.max, Duration::MAX);
        assert_eq!(scaled.restart_window, Duration::MAX);
    }
}
