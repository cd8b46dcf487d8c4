//! The waits of control requests: which goal a request waits for (a state, ready, down,
//! ready again after a restart), and how far a service is from it. Data only: the
//! supervisor checks every [`Waiter`] once per round of its loop (see `requests`).

use std::time::{Duration, Instant};

use crate::control::protocol::StateName;
use crate::control::server::ClientId;

/// A request waiting for a service to reach a goal.
pub(super) struct Waiter {
    pub(super) client: ClientId,
    pub(super) index: usize,
    pub(super) goal: Goal,
    pub(super) deadline: Option<Instant>,
    pub(super) timeout: Duration,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Goal {
    /// `wait`: this state, once restarted at least `restarts` times.
    State { state: StateName, restarts: u32 },
    /// `start`: ready; given up if it fails, finishes or is stopped meanwhile.
    Up,
    /// `stop`: down (or failed, or finished).
    Down,
    /// `restart`: ready in a run newer than run number `after`.
    NewRun { after: u64 },
}

pub(super) enum Progress {
    Reached,
    Pending,
    Unreachable(String),
}

impl Goal {
    pub(super) fn describe(&self) -> String {
        match self {
            Goal::State { state, restarts: 0 } => state.to_string(),
            Goal::State { state, restarts } => format!("{state} after {restarts} restarts"),
            Goal::Up => "ready".to_owned(),
            Goal::Down => "down".to_owned(),
            Goal::NewRun { .. } => "ready again".to_owned(),
        }
    }
}
