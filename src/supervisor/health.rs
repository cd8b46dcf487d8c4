//! The answers to `health` and `ping`: is the container ready and healthy, and does the
//! loop answer at all. What an orchestrator's probe (`HEALTHCHECK CMD pidvisorctl health`,
//! a Kubernetes exec probe) sees.
//!
//! Healthy means: the container is up (not running its init scripts, not draining before
//! a stop, not shutting down), and every service asked about (each wanted one when none is
//! named) is ready, or is a one-shot that completed. Each one that is not gets one short
//! line saying why.

use std::time::Instant;

use serde_json::json;

use super::state::{Stage, Supervisor};
use crate::control::protocol::{self, Refusal};
use crate::services::service::{Service, State};

impl Supervisor {
    /// Where the container is in its life, as `health` and `ping` name it.
    pub(super) fn life_stage(&self) -> &'static str {
        match self.stage {
            Stage::Init { .. } => "init",
            Stage::Up if self.drain.is_some() => "draining",
            Stage::Up => "up",
            _ => "stopping",
        }
    }

    /// The `ping` reply: the loop answered; where the container is.
    pub(super) fn ping_reply(&self) -> String {
        protocol::ok(json!({ "stage": self.life_stage() }))
    }

    /// The `health` reply for the services named (every wanted one if none).
    pub(super) fn health_reply(&self, names: &[String], now: Instant) -> Result<String, Refusal> {
        let indexes: Vec<usize> = if names.is_empty() {
            (0..self.slots.len())
                .filter(|&i| self.slots[i].service.wanted)
                .collect()
        } else {
            names
                .iter()
                .map(|name| self.find(name))
                .collect::<Result<_, _>>()?
        };
        let container = match (&self.stage, self.drain) {
            (Stage::Up, None) => None,
            (Stage::Up, Some(drain)) => Some(format!(
                "draining before the stop ({:.1}s left)",
                drain.until.saturating_duration_since(now).as_secs_f64()
            )),
            (Stage::Init { .. }, _) => Some("running the cont-init.d scripts".to_owned()),
            _ => Some("shutting down".to_owned()),
        };
        let problems: Vec<_> = indexes
            .into_iter()
            .filter_map(|i| {
                let slot = &self.slots[i];
                let unhealthy = slot.liveness.unhealthy_because();
                let why = match (not_ready_because(&slot.service, now), unhealthy) {
                    (None, None) => return None,
                    (Some(why), None) => why,
                    (None, Some(check)) => format!("unhealthy: {check}"),
                    (Some(why), Some(check)) => format!("{why} (unhealthy: {check})"),
                };
                Some(json!({ "service": slot.service.name(), "why": why }))
            })
            .collect();
        Ok(protocol::ok(json!({
            "healthy": container.is_none() && problems.is_empty(),
            "stage": self.life_stage(),
            "container": container,
            "problems": problems,
        })))
    }
}

/// Why a service is not ready, in a few words; `None` when it is (or completed).
fn not_ready_because(service: &Service, now: Instant) -> Option<String> {
    let last_exit = || match service.last_exit {
        Some((exit, _)) => super::exits::describe_exit(exit),
        None => "no exit".to_owned(),
    };
    let why = match service.state {
        State::Ready { .. } => return None,
        State::Finished if service.completed() => return None,
        State::Starting { .. } => {
            let since = service
                .started_at()
                .map_or(0.0, |at| now.saturating_duration_since(at).as_secs_f64());
            format!("starting for {since:.1}s, not ready yet")
        }
        State::Backoff { until } => format!(
            "backoff after {}, restarting in {:.1}s",
            last_exit(),
            until.saturating_duration_since(now).as_secs_f64()
        ),
        State::Failed => format!(
            "failed: gave up after {} restarts (last: {})",
            service.restarts,
            last_exit()
        ),
        State::Finished => format!("finished after {}, not restarted", last_exit()),
        State::Stopping { .. } => "stopping".to_owned(),
        State::Finishing { .. } => "running its finish script".to_owned(),
        State::Down if service.wanted => "down, waiting to start".to_owned(),
        State::Down => "down (stopped)".to_owned(),
    };
    Some(why)
}
