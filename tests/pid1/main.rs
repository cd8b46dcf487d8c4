//! Integration tests of pidvisor as a real PID 1: each test starts the built binary in a
//! fresh PID namespace (`unshare --pid --fork --mount-proc`) or, where the point is *not*
//! being PID 1, as a plain child subreaper, and checks what the README promises from the
//! outside: exit codes, signals, reaping, the child's starting state, terminals, shutdown
//! and idleness.
//!
//! Needs util-linux (`unshare`), bsdutils (`script`), procps (`ps`), perl and python3, and
//! root or unprivileged user namespaces.

#[path = "../common/harness.rs"]
mod harness;

mod child_state;
mod cli;
mod exit_codes;
mod idle;
mod reaping;
mod shutdown;
mod signals;
mod subreaper;
mod tty;
