//! The services: what the user asked for, and how each service's life goes.
//!
//! A service folder becomes a [`spec::ServiceSpec`] ([`config`], reading `service.toml`
//! through [`config_file`] and resolving users with [`users`]); [`scan`] reads the whole
//! services folder and orders it, and [`check`] is `pidvisor check`. [`service`] is the
//! life cycle of one service as a pure state machine: it decides, and returns the actions
//! for the supervisor to carry out. [`probe`] holds the readiness checks' sockets and
//! pipes; [`scripts`] lists the `cont-init.d` and `cont-finish.d` scripts.
//!
//! Nothing here spawns or signals a process: this layer decides or describes. It may use
//! [`crate::init`] (exit statuses, signal names, credentials, pipes),
//! [`crate::output`] and [`crate::duration`], and nothing above.

pub mod check;
pub mod config;
pub mod config_file;
pub mod http_check;
pub mod liveness;
pub mod privilege;
pub mod probe;
pub mod scan;
pub mod scripts;
pub mod service;
pub mod spec;
#[cfg(test)]
pub mod test_dir;
pub mod users;
