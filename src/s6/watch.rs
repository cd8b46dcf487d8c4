//! Waiting for services to reach a state, as `s6-svwait` and `s6-svc -w` do: up, up and
//! ready, down, down with `finish` done, restarted, restarted and ready. Never polls: it
//! subscribes to pidvisor's events first, then takes a snapshot of the status, then reads
//! events until every service (or one, with `-o`) is there, or the deadline passes.

use std::time::Instant;

use serde_json::Value;

use super::talk::{Failure, Link};
use crate::control::protocol::{ServiceStatus, StateName};

/// The state waited for (s6's `-u`, `-U`, `-d`, `-D`, `-r`, `-R`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// `run` runs.
    Up,
    /// `run` runs and is ready.
    Ready,
    /// `run` does not run.
    Down,
    /// `run` does not run and its `finish` is done.
    DownAndFinished,
    /// Started again since the wait began.
    Restarted,
    /// Started again since the wait began, and ready.
    RestartedAndReady,
}

impl Want {
    /// Waits for a service to come up (so that giving up for good is a failure).
    fn is_upward(self) -> bool {
        !matches!(self, Want::Down | Want::DownAndFinished)
    }
}

/// How a wait ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every service (or one, with `any`) reached the state.
    Reached,
    /// Waiting for up: this many services failed or finished for good instead.
    GaveUp(usize),
}

/// One service being waited for.
struct Target {
    name: String,
    reached: bool,
    gave_up: bool,
    /// A `started` event was seen since the wait began (for the restart waits).
    restarted: bool,
}

/// A subscription to pidvisor's events, taken before anything is asked of the services
/// so that no change is missed.
pub struct Watch {
    events: Link,
}

impl Watch {
    pub fn subscribe(env: &impl Fn(&str) -> Option<String>) -> Result<Watch, Failure> {
        Ok(Watch {
            events: Link::connect(env)?.follow_events()?,
        })
    }

    /// Waits until the services named reach `want` (all of them, or one with `any`).
    /// `snapshot` is their status taken after the subscription.
    pub fn wait(
        mut self,
        names: &[String],
        want: Want,
        any: bool,
        snapshot: &[ServiceStatus],
        deadline: Option<Instant>,
    ) -> Result<Outcome, Failure> {
        let mut targets: Vec<Target> = names
            .iter()
            .map(|name| {
                let status = snapshot.iter().find(|s| &s.name == name);
                Target {
                    name: name.clone(),
                    reached: status.is_some_and(|s| is_there(s, want)),
                    gave_up: want.is_upward()
                        && !matches!(want, Want::Restarted | Want::RestartedAndReady)
                        && status.is_some_and(|s| {
                            matches!(s.state, StateName::Failed | StateName::Finished)
                        }),
                    restarted: false,
                }
            })
            .collect();
        self.events.set_deadline(deadline)?;
        loop {
            let done = targets.iter().filter(|t| t.reached).count();
            let gave_up = targets.iter().filter(|t| t.gave_up && !t.reached).count();
            if (any && done > 0) || done == targets.len() {
                return Ok(Outcome::Reached);
            }
            if done + gave_up == targets.len() {
                return Ok(Outcome::GaveUp(gave_up));
            }
            let Some(event) = self.events.next_line()? else {
                return Err(Failure::System(
                    "pidvisor closed the connection (it is shutting down)".to_owned(),
                ));
            };
            if let Some(target) = targets
                .iter_mut()
                .find(|t| event["service"].as_str() == Some(t.name.as_str()))
            {
                on_event(target, want, &event);
            }
        }
    }
}

/// Whether the status shows the service in the state waited for (the restart waits need
/// a start seen since the wait began: never from a snapshot).
fn is_there(status: &ServiceStatus, want: Want) -> bool {
    let up = status.pid.is_some() && status.state != StateName::Finishing;
    match want {
        Want::Up => up,
        Want::Ready => up && status.state == StateName::Ready,
        Want::Down => !up,
        Want::DownAndFinished => !up && status.state != StateName::Finishing,
        Want::Restarted | Want::RestartedAndReady => false,
    }
}

/// What an event of the service says about the wait.
fn on_event(target: &mut Target, want: Want, event: &Value) {
    let kind = event["event"].as_str().unwrap_or("");
    if kind == "started" {
        target.restarted = true;
        target.gave_up = false;
    }
    let reached = match (want, kind) {
        (Want::Up, "started") => true,
        (Want::Ready, "ready") => true,
        (Want::Down, "exited" | "spawn_failed" | "stopped") => true,
        // After an exit: the finish is done once the next step is decided.
        (
            Want::DownAndFinished,
            "restart_scheduled" | "finished" | "failed" | "stopped" | "spawn_failed",
        ) => true,
        (Want::Restarted, "started") => true,
        (Want::RestartedAndReady, "ready") => target.restarted,
        _ => false,
    };
    target.reached |= reached;
    if want.is_upward() && matches!(kind, "failed" | "finished") {
        target.gave_up = true;
    }
}
