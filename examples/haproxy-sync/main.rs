//! `haproxy-sync`: the load balancer's gossip event handler. It keeps HAProxy's backend in
//! step with the cluster's membership through HAProxy's runtime API, with no reload and no
//! dropped connection, and rewrites the config file so that a restart of HAProxy rebuilds
//! the same set of servers.
//!
//! It is run by the gossip agent (or by Serf: the interface is Serf's) for each event:
//!
//! ```text
//! gossip agent --event-handler 'member-join,member-leave,member-failed,member-update=haproxy-sync --backend web'
//! ```
//!
//! `SERF_EVENT` says what happened; stdin holds one line per member concerned,
//! `NAME<TAB>IP<TAB>ROLE<TAB>k=v,k=v`. Members of another role than `--role` are ignored;
//! the port comes from the member's `port` tag (or `--port`).
//!
//! - `member-join`, `member-update`: `add server BACKEND/NAME IP:PORT check`, `enable
//!   health`, `set server ... state ready` (an existing server gets its new address and is
//!   made ready again).
//! - `member-leave`: `state drain` (no new requests), wait until its sessions reach 0
//!   (bounded by `--drain-timeout`), `state maint`, `del server`.
//! - `member-failed`: `state maint` at once; the requests still connecting to it get 2 s
//!   to fail over through HAProxy's `retries` and `option redispatch`, then `shutdown
//!   sessions` cuts what is left, and `del server`.
//!
//! Exit code: 0 when every member was handled, 1 when one was not (each failure is logged
//! with the member and HAProxy's answer), 2 for a usage error.

mod config_file;
mod members;
mod options;
mod runtime;
mod sync;

use std::io::Read;
use std::process::ExitCode;

use tracing::error;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .with_ansi(false)
        .init();
    let options = match options::parse(std::env::args().skip(1)) {
        Ok(options::Parsed::Run(options)) => options,
        Ok(options::Parsed::Help) => {
            print!("{}", options::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("haproxy-sync: {message}\n{}", options::USAGE);
            return ExitCode::from(2);
        }
    };
    let event = match std::env::var("SERF_EVENT") {
        Ok(event) => event,
        Err(_) => {
            eprintln!("haproxy-sync: SERF_EVENT is not set: run me as a gossip event handler");
            return ExitCode::from(2);
        }
    };
    let mut input = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut input) {
        error!("cannot read the members on stdin: {e}");
        return ExitCode::FAILURE;
    }
    let members = members::parse(&input, &options.role, options.port);
    match sync::handle(&options, &event, &members) {
        Ok(()) => ExitCode::SUCCESS,
        Err(()) => ExitCode::FAILURE,
    }
}
