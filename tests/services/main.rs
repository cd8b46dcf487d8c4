//! Integration tests of the services supervision (`services.d`, `cont-init.d`,
//! `cont-finish.d`, `--check`): each test writes a layout to a temp dir, runs the built
//! binary on it as PID 1 of a fresh PID namespace, and checks what the README promises
//! from the outside: files the services write, exit codes, log lines, /proc, and timings
//! with generous margins.
//!
//! Needs util-linux (`unshare`), coreutils, python3, and root or unprivileged user
//! namespaces.

#[path = "../common/harness.rs"]
mod harness;
mod layout;

mod backoff;
mod check;
mod environment;
mod finish;
mod isolation;
mod ordering;
mod output;
mod readiness;
mod restart;
mod stalled_output;
mod stopping;
