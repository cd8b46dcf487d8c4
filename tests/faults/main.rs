//! Faults while running: pidvisor as PID 1 when many things go wrong at once. Each test
//! checks that pidvisor keeps running (or exits as documented), leaves no zombie, loses
//! no line that reached a pipe, and does not disturb the other services.
//!
//! - [`descriptors`]: out of open files at start: the services that cannot get their
//!   pipes are left out with a message naming the system call and the fix;
//! - [`unfinished_line`]: a run's last line without a newline goes out as its own line
//!   when the run exits, even while the output backlog is full;
//! - [`soak`]: the chaos soak (60 s here; `PIDVISOR_SOAK_SECS=600` for the long form);
//! - [`escaped`]: a daemon that left its service's process group, with a cgroup per
//!   service and without;
//! - [`exhaustion`]: failing forks, descriptors running out, a full disk under the
//!   events file, a service out of memory;
//! - [`hostile`]: services that ignore SIGTERM, stop themselves, close their stdout,
//!   write hundreds of MB without a newline, or put a child in a group of its own;
//! - [`races`]: SIGTERM during `cont-init.d` and while services start, a child older than
//!   pidvisor, a stale control socket;
//! - [`storms`]: 30 services crash-looping while clients hammer the control socket.
//!
//! Needs what tests/services needs (util-linux, coreutils, python3, root or unprivileged
//! user namespaces).

#[path = "../common/harness.rs"]
mod harness;
#[path = "../services/layout.rs"]
#[allow(dead_code)]
mod layout;

mod ctl;
mod descriptors;
mod escaped;
mod exhaustion;
mod hostile;
mod races;
mod soak;
mod storms;
mod unfinished_line;
