//! The liveness check of `service.toml`: `health = { command | tcp | http = ... }`,
//! `health-interval`, `health-timeout` and `health-failures`, checked together, since each
//! only means something with the others (and not on a one-shot, which is never restarted).

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::Checker;
use super::values::{Invalid, Scalar, duration, invalid, secs};
use crate::services::http_check::HttpTarget;
use crate::services::spec::{Check, HealthCheck, Readiness, RestartPolicy, ServiceSpec};

/// The most failures in a row that may be asked for (more is surely a typo).
const MAX_FAILURES: i64 = 1000;

/// `health = { ... }` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawCheck {
    command: Option<String>,
    tcp: Option<String>,
    http: Option<String>,
}

/// The `health*` keys as written.
pub(super) struct RawHealth {
    pub(super) check: Option<Spanned<RawCheck>>,
    pub(super) interval: Option<Spanned<Scalar>>,
    pub(super) timeout: Option<Spanned<Scalar>>,
    pub(super) failures: Option<Spanned<i64>>,
}

impl Checker<'_> {
    /// The liveness check and the check timeout, for a spec whose other keys are read.
    pub(super) fn health(
        &mut self,
        raw: RawHealth,
        spec: &ServiceSpec,
    ) -> (Option<HealthCheck>, Duration) {
        let given = [
            ("health-interval", raw.interval.as_ref().map(Spanned::span)),
            ("health-failures", raw.failures.as_ref().map(Spanned::span)),
        ];
        let timeout = self.convert("health-timeout", raw.timeout, secs(5), positive_duration);
        let interval = self.convert("health-interval", raw.interval, secs(10), positive_duration);
        let failures = self.convert("health-failures", raw.failures, 3, failure_count);
        let Some(check) = raw.check else {
            for (key, span) in given {
                if let Some(span) = span {
                    let bad = invalid(
                        "means nothing without a health check",
                        "add health = { http = \"http://127.0.0.1:8080/health\" } (or command, tcp), or remove it",
                    );
                    self.toml_problem(Some(key), Some(span), bad);
                }
            }
            return (None, timeout);
        };
        let span = check.span();
        if spec.restart == RestartPolicy::Never && spec.ready == Readiness::Started {
            let bad = invalid(
                "a one-shot (restart = \"never\", no ready check) is never restarted, so a liveness check has nothing to do",
                "remove health, or give the service a restart policy",
            );
            self.toml_problem(Some("health"), Some(span), bad);
            return (None, timeout);
        }
        let check = self.convert("health", Some(check), None, |c| check_form(c).map(Some));
        let health = check.map(|check| HealthCheck {
            check,
            interval,
            failures,
        });
        (health, timeout)
    }
}

fn check_form(raw: RawCheck) -> Result<Check, Invalid> {
    let one_of = "give exactly one of command, tcp or http, e.g. health = { http = \"http://127.0.0.1:8080/health\" }";
    match (raw.command, raw.tcp, raw.http) {
        (Some(command), None, None) if !command.trim().is_empty() => Ok(Check::Command(command)),
        (Some(_), None, None) => Err(invalid("command is empty", one_of)),
        (None, Some(addr), None) => addr.parse().map(Check::Tcp).map_err(|_| {
            invalid(
                format!("\"{addr}\" is not an address and port"),
                "write an IP address and a port, e.g. \"127.0.0.1:8080\" or \"[::1]:8080\"",
            )
        }),
        (None, None, Some(url)) => http_target(&url).map(Check::Http),
        (None, None, None) => Err(invalid("says nothing", one_of)),
        _ => Err(invalid("has more than one form", one_of)),
    }
}

/// An `http` URL of `health` or `ready`.
pub(super) fn http_target(url: &str) -> Result<HttpTarget, Invalid> {
    HttpTarget::parse(url).map_err(|reason| match reason.split_once("; ") {
        Some((message, fix)) => invalid(message, fix),
        None => invalid(reason, "write e.g. \"http://127.0.0.1:8080/health\""),
    })
}

fn positive_duration(value: Scalar) -> Result<Duration, Invalid> {
    let given = value.to_string();
    match duration(value)? {
        d if d.is_zero() => Err(invalid(
            format!("{given} is zero"),
            "write a duration longer than 0, e.g. \"10s\"",
        )),
        d => Ok(d),
    }
}

fn failure_count(n: i64) -> Result<u32, Invalid> {
    match n {
        1..=MAX_FAILURES => Ok(n as u32),
        _ => Err(invalid(
            format!("{n} is not a number of failures"),
            format!("write a count from 1 to {MAX_FAILURES}, e.g. 3"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use crate::services::config::load_service;
    use crate::services::spec::{Check, HealthCheck, Readiness, ServiceSpec};
    use crate::services::test_dir::TempDir;
    use crate::services::users::UserDb;
    use std::time::Duration;

    fn load(toml: &str) -> Result<ServiceSpec, Vec<String>> {
        let dir = TempDir::new("config-health");
        let path = dir.service("svc", Some(toml));
        let prefix = format!("{}/", dir.path().display());
        load_service(&path, "svc", &UserDb::default()).map_err(|all| {
            all.iter()
                .map(|e| e.to_string().replace(&prefix, ""))
                .collect()
        })
    }

    fn problem(toml: &str) -> String {
        let all = load(toml).expect_err(toml);
        assert_eq!(all.len(), 1, "{all:#?}");
        all[0].clone()
    }

    #[test]
    fn reads_each_check_form_with_its_interval_timeout_and_failures() {
        let spec = load(
            "health = { http = \"http://127.0.0.1:8080/health\" }\nhealth-interval = \"2s\"\n\
             health-timeout = \"500ms\"\nhealth-failures = 5\n",
        )
        .expect("valid");
        let Some(HealthCheck {
            check: Check::Http(target),
            interval,
            failures,
        }) = spec.health
        else {
            panic!("{:?}", spec.health);
        };
        assert_eq!(
            (target.path.as_str(), interval, failures),
            ("/health", Duration::from_secs(2), 5)
        );
        assert_eq!(spec.check_timeout, Duration::from_millis(500));
        let spec = load("health = { tcp = \"127.0.0.1:5432\" }").expect("valid");
        assert!(matches!(
            spec.health,
            Some(HealthCheck {
                check: Check::Tcp(_),
                failures: 3,
                ..
            })
        ));
        assert_eq!(
            spec.health.map(|h| h.interval),
            Some(Duration::from_secs(10))
        );
        let spec = load("health = { command = \"pg_isready\" }").expect("valid");
        assert!(matches!(
            spec.health,
            Some(HealthCheck {
                check: Check::Command(_),
                ..
            })
        ));
        let spec = load("ready = { http = \"http://[::1]:8080/\" }").expect("valid");
        assert!(matches!(spec.ready, Readiness::Http(_)));
    }

    #[test]
    fn bad_checks_name_the_file_the_key_and_the_fix() {
        let unknown = problem("health = { grpc = \"127.0.0.1:1\" }");
        assert!(
            unknown.starts_with("svc/service.toml:1:12: grpc: unknown key"),
            "{unknown}"
        );
        assert!(
            problem("health = { http = \"http://example.com/\" }")
                .contains("health: \"http://example.com/\": \"example.com\" is not an IP address")
        );
        assert!(
            problem("ready = { http = \"https://127.0.0.1/\" }")
                .contains("ready: \"https://127.0.0.1/\": the scheme https:// is not supported")
        );
        assert!(
            problem("health = { tcp = \"1.2.3.4:1\", command = \"x\" }")
                .contains("has more than one form")
        );
        assert!(problem("health = {}").contains("health: says nothing"));
        assert!(
            problem("health = { tcp = \"127.0.0.1:1\" }\nhealth-interval = 0")
                .contains("health-interval: 0 is zero")
        );
        assert!(
            problem("health = { tcp = \"127.0.0.1:1\" }\nhealth-interval = -5")
                .contains("health-interval: -5 is negative")
        );
        assert!(
            problem("health = { tcp = \"127.0.0.1:1\" }\nhealth-timeout = \"0s\"")
                .contains("health-timeout: \"0s\" is zero")
        );
        assert!(
            problem("health = { tcp = \"127.0.0.1:1\" }\nhealth-failures = 0")
                .contains("health-failures: 0 is not a number of failures")
        );
        assert!(
            problem("health-interval = \"5s\"")
                .contains("health-interval: means nothing without a health check")
        );
        let one_shot = problem("restart = \"never\"\nhealth = { tcp = \"127.0.0.1:1\" }");
        assert!(
            one_shot.starts_with("svc/service.toml:2:10: health: a one-shot"),
            "{one_shot}"
        );
        assert!(
            one_shot.contains("remove health, or give the service a restart policy"),
            "{one_shot}"
        );
    }
}
