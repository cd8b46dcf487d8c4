//! Where text goes: the services' output and pidvisor's own words, none of which may ever
//! block the event loop.
//!
//! [`outlet`] owns pidvisor's stdout and stderr and never blocks on them; [`logs`] relays
//! a service's output to them line by line, prefixed with its name, and holds the pipes to
//! its logger; [`logging`] is pidvisor's own log; [`events`] is the life-cycle event log
//! (the `--events-file` and the event stream of `pidvisorctl events`); [`console`] prints
//! the answers of the commands that do not run the loop (help, `check`, pidvisorctl).
//!
//! It describes and carries bytes; it decides nothing about services. It may use
//! [`crate::init`] (its pipes) and nothing above.

pub mod console;
pub mod events;
pub mod logging;
pub mod logs;
pub mod outlet;
