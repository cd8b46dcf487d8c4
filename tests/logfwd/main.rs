//! Integration tests of the log forwarder example (`examples/logfwd`): each test runs the
//! built binary against a real collector, Debian's rsyslogd, started on a loopback port
//! in the test's own temp dir, and checks what arrives there: every line exactly once and
//! in order (also across a collector restart), exact drop counts, flushing at end of
//! input, long and non-UTF-8 lines, bad arguments.
//!
//! Needs rsyslog (`apt-get install rsyslog`; .ci/run installs it).

#[allow(dead_code)] // shared with the other test targets
#[path = "../common/build_dir.rs"]
mod build_dir;
mod collector;
mod process;
mod support;

mod buffering;
mod delivery;
mod input;
mod throughput;
mod timestamp;
