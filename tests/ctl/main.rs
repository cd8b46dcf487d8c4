//! Integration tests of the control socket, `pidvisorctl` and the event stream, each
//! against a live pidvisor running as PID 1 of its own PID namespace, with its socket and
//! events file in the test's temp dir.
//!
//! Needs what tests/pid1 needs, plus `setpriv` (util-linux) and `jq`.

#[path = "../common/harness.rs"]
mod harness;
mod support;

mod commands;
mod errors;
mod events;
mod load;
mod permissions;
mod readme;
mod robustness;
