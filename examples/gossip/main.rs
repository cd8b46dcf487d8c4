//! `gossip`: a cluster membership agent, SWIM over UDP (the `foca` crate), with event
//! handlers that keep Serf's interface, so that Serf's handler scripts run unchanged.
//!
//! ```text
//! gossip agent --bind 0.0.0.0:7946 --join lb:7946 --tag role=web --tag port=8080 \
//!     --event-handler member-join,member-leave,member-failed=/etc/lb/update.sh \
//!     --notify-fd 3
//! gossip members [--format json]
//! ```
//!
//! # Membership
//! foca runs SWIM with its LAN profile (memberlist's): a probe a second, 500 ms to answer,
//! indirect probes through three members, a suspect is declared down 4 s later. A node
//! that stops answering is reported failed by everyone within about 5 to 7 s; joins and
//! leaves spread within about a second. Each node's identity carries its name and tags, so
//! that they travel with the membership. `--join` seeds are resolved and announced to on
//! each attempt, with a pause doubling from 1 s to 10 s, until some member answers (unlike
//! Serf's `-join`, a seed that is not up yet is not an error), and again whenever every
//! other member is gone. A seed must be given by its advertised address (or a name that
//! resolves to it): foca only accepts an announce addressed to one of its own addresses.
//!
//! On SIGTERM or SIGINT the agent first sends a leave notice straight to every live member,
//! then leaves through foca and exits 0: the others report `member-leave`, while a node
//! that vanishes is reported `member-failed`.
//!
//! # Event handlers (`--event-handler [FILTER=]PROGRAM`, repeatable)
//! - Run as `/bin/sh -c PROGRAM`, one at a time in event order (a queue and a thread of
//!   their own), each in its own process group; killed with the whole group after
//!   `--handler-timeout` (10 s); always reaped.
//! - FILTER: comma-separated `member-join`, `member-leave`, `member-failed`,
//!   `member-update`; none means every event.
//! - Environment: `SERF_EVENT`, `SERF_SELF_NAME`, `SERF_SELF_ROLE` (the `role` tag),
//!   `SERF_TAG_<KEY>` for each local tag (key upper-cased), plus the agent's environment.
//! - stdin: one line per member concerned, `NAME<TAB>IP<TAB>ROLE<TAB>k=v,k=v` (IP without
//!   the port, tags sorted by key, tabs and newlines in values written `\t` and `\n`).
//! - stdout and stderr: each line in the agent's log as `handler member-join: LINE`; a
//!   non-zero exit is logged as a warning.
//! - member-join fires for the local node at start, as in Serf.
//!
//! Where it differs from Serf: no user events or queries (`user:`/`query:` filters and
//! `SERF_USER_EVENT`, `SERF_USER_LTIME`, `SERF_QUERY_*` do not exist, so such a filter is
//! refused at start); no `member-reap`; members that left or failed stay listed until the
//! agent restarts; events of one kind seen in the same instant (one datagram or timer) are
//! coalesced into one run, not over Serf's coalescing window; a restarted member that
//! comes back before it was declared down is a `member-update` only if its name or tags
//! changed (else no event); queued events are dropped when the agent stops (the running
//! handler still finishes, within its timeout). A handler whose first word is a path must
//! be an executable file when the agent starts (else it refuses to start, exit 2).
//!
//! # The members query
//! The agent answers on a Unix socket (`--socket`, default /run/gossip.sock; it must be
//! writable, else the agent refuses to start and says to pass `--socket`). `gossip members`
//! prints one line per member, the local node first: name, address, status (alive, left,
//! failed) and tags; `--format json` prints `{"members":[{"name", "addr", "status",
//! "tags"}]}`.
//!
//! Exit codes: 0 after a graceful leave, 1 when the agent cannot run (a port or socket in
//! use), 2 for a bad command line (unknown flag, bad address, `--tag` without `=`, a
//! handler that is not executable).

mod address;
mod agent;
mod cli;
mod events;
mod handlers;
mod identity;
mod join;
mod query;
mod readiness;
mod roster;
mod timers;
mod wire;

use std::process::ExitCode;

use cli::Command;
use readiness::Readiness;

fn main() -> ExitCode {
    let command = match cli::parse(std::env::args().skip(1).collect()) {
        Ok(command) => command,
        Err(error) => {
            eprintln!("gossip: {error}");
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Help => {
            print!("{}", cli::USAGE);
            ExitCode::SUCCESS
        }
        Command::Members(options) => match query::members(&options) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("gossip members: {error}");
                ExitCode::FAILURE
            }
        },
        Command::Agent(options) => {
            // Before anything opens a descriptor that could take its number.
            let readiness = match options.notify_fd.map(Readiness::from_fd) {
                None => Readiness::none(),
                Some(Ok(readiness)) => readiness,
                Some(Err(error)) => {
                    eprintln!("gossip: {error}");
                    return ExitCode::from(2);
                }
            };
            tracing_subscriber::fmt()
                .with_writer(std::io::stderr)
                .with_ansi(false)
                .with_target(false)
                .init();
            match agent::run(options, readiness) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    tracing::error!("{error}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
