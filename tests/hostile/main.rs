//! Integration tests of hostile and broken input, and of security (issue 10): service
//! folders built to break the loader, a control socket under abuse, a signal flood, and
//! what a service run as another user can and cannot do. Each runs the built binary as PID
//! 1 of its own PID namespace and checks that pidvisor keeps running, says clearly what is
//! wrong (file, key, fix), and that the healthy services are not disturbed.
//!
//! Needs what tests/ctl needs (util-linux, coreutils, python3, root or user namespaces).

#[path = "../common/harness.rs"]
mod harness;
#[allow(dead_code)]
#[path = "../ctl/support.rs"]
mod support;

mod config;
mod security;
mod signal_flood;
mod socket;
mod unprivileged;
