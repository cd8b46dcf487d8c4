//! Integration tests of what orchestrators see: `pidvisorctl health` and `ping`, the drain
//! of `--shutdown-delay`, each against a live pidvisor running as PID 1 of its own PID
//! namespace, with its socket and events file in the test's temp dir.
//!
//! Needs what tests/ctl needs.

#[path = "../common/harness.rs"]
mod harness;
#[path = "../ctl/support.rs"]
#[allow(dead_code)]
mod support;

mod drain;
mod liveness;
mod oom;
mod probes;
mod sd_notify;
mod users;
