//! The supervisor: the one event loop that runs the container's life, and the only part of
//! pidvisor that acts (spawns, signals, reaps). Signals, child exits, service output,
//! readiness, control requests and deadlines are handled in a single thread, for the main
//! command and every service alike.
//!
//! pidvisor sleeps in one `epoll_wait`, with no timeout unless a deadline is pending, so an
//! idle container costs zero wake-ups. Every event source is a file descriptor registered
//! here (the signalfd, each service's output pipes, readiness pipes and probe sockets, the
//! control socket and its clients), and every timed step is a deadline, never a sleep.
//! Services decide in [`crate::services::service`]; the supervisor carries out their
//! actions and routes events to them.
//!
//! Error policy: before the loop, a failure to set up (signalfd, epoll, subreaper) is fatal
//! and reported at once, because nothing useful can run without it. Inside the loop
//! pidvisor must not die, since as PID 1 its exit kills the whole container: every error
//! is logged, the service concerned gets its restart policy, and the loop goes on.
//!
//! The container's life is a sequence of stages:
//! 1. `Init`: the `cont-init.d` scripts, one at a time, in name order. A failure stops
//!    the container (unless told to continue).
//! 2. `Up`: services start as soon as the services they come `after` are ready; the main
//!    command starts once every service wanted at boot is ready (or has stopped for good).
//! 3. Shutdown, on TERM/INT/QUIT, the main command's exit or a critical service's end:
//!    `StopMain` (the signal was forwarded; SIGKILL to its group after the grace time),
//!    `StopServices` (each service once all services that come after it are down, each
//!    bounded by its stop-timeout), `Finish` (the `cont-finish.d` scripts, each bounded),
//!    `Sweep` (SIGTERM and SIGCONT to every remaining process; SIGKILL after the grace
//!    time), and pidvisor exits as soon as it has no child left. A second TERM/INT/QUIT
//!    skips to SIGKILL for everything.
//!
//! One [`Supervisor`] ([`state`]), its methods spread over one file per job: [`setup`]
//! before the loop, [`event_loop`], [`on_signal`], [`exits`] (reaping), [`stages`] (with
//! `stages/`: the scripts, the way up, the way down), [`main_command`], [`actions`] (what
//! a service's state machine decided), [`checks`] (liveness and HTTP readiness checks),
//! [`requests`] and [`waits`] (the control socket's requests), [`health`] (the `health`
//! and `ping` answers), [`drain`] (`--shutdown-delay`), [`oom`] (OOM kills), [`sd_notify`] (`NOTIFY_SOCKET`),
//! [`observe`] (life-cycle events)
//! and [`output`] (back-pressure on stdout and stderr). These files use [`state`] and
//! each other's methods; none imports `mod.rs`.
//!
//! This is the top layer below `main`: it may use every other layer ([`crate::init`],
//! [`crate::output`], [`crate::services`], [`crate::control`], [`crate::cli`]).

mod actions;
mod checks;
mod drain;
mod event_loop;
mod exits;
mod health;
mod main_command;
mod observe;
mod on_signal;
mod oom;
mod output;
mod requests;
mod sd_notify;
mod setup;
mod stages;
mod state;
mod waits;

pub use state::Supervisor;
