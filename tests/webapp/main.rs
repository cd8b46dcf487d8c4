//! Integration tests of the webapp example (`examples/webapp`): each test starts the
//! built program on a free loopback port, waits for its readiness newline, and checks
//! from the outside what its documentation promises: the endpoints and their answers,
//! the access log on stdout, the graceful stop, and clear errors for bad input.

mod cli;
mod drain;
mod endpoints;
mod support;
