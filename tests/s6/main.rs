//! Integration tests of the s6-overlay drop-in: an image laid out for s6-overlay v2 (its
//! `with-contenv` shebangs, `container_environment`, `s6-setuidgid`, `s6-svc`,
//! `s6-svwait`, `s6-svstat`) run with pidvisor as PID 1 of its own PID namespace; the
//! commands' bad input; and, where Debian's `s6` is installed, s6-svstat's and s6-svc's
//! output and exit codes side by side with the real tools.
//!
//! Needs what tests/pid1 needs, plus bash and, for the side-by-side test, `s6`.

#[path = "../common/harness.rs"]
mod harness;
mod support;

mod bad_input;
mod compare;
mod image;
