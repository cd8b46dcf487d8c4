//! What each gossip event does to the backend: a joining member becomes a ready server, a
//! leaving one is drained before it is removed, a failed one is removed at once.

use std::time::{Duration, Instant};

use tracing::{error, info, warn};

use crate::config_file;
use crate::members::Member;
use crate::options::Options;
use crate::runtime::Runtime;

/// HAProxy tells no one when a server's last session ends: while draining, ask this often.
const DRAIN_CHECK_EVERY: Duration = Duration::from_millis(100);
/// How long the sessions of a failed member, cut with `shutdown sessions`, may take to go.
const CUT_SESSIONS_TIMEOUT: Duration = Duration::from_secs(2);
/// A failed member's server is in maintenance at once; the requests still trying to
/// connect to it get this long to fail over by HAProxy's own `retries` and `option
/// redispatch` (a vanished node never answers, so their connect times out) before what
/// is left is cut. Longer than HAProxy's `timeout connect` (1 s in examples/cluster):
/// those requests then succeed on another server instead of being cut.
const FAILOVER_GRACE: Duration = Duration::from_secs(2);

/// Applies `event` to every member; `Err` once any of them could not be handled (each
/// failure is logged).
pub fn handle(options: &Options, event: &str, members: &[Member]) -> Result<(), ()> {
    let api = Runtime::new(&options.socket);
    let backend = options.backend.as_str();
    let mut ok = true;
    for member in members {
        let server = format!("{backend}/{}", member.server);
        let result = match event {
            "member-join" | "member-update" => add(&api, backend, member),
            "member-leave" => drain_then_remove(&api, backend, &server, options.drain_timeout),
            "member-failed" | "member-reap" => remove(&api, backend, &server, FAILOVER_GRACE),
            other => {
                info!("{other}: nothing to do for the load balancer");
                return Ok(());
            }
        };
        match result {
            Ok(done) => info!("{event} {server} ({}:{}): {done}", member.ip, member.port),
            Err(e) => {
                error!("{event} {server}: {e}");
                ok = false;
            }
        }
    }
    if let Some(path) = &options.config
        && let Err(e) = api
            .servers(backend)
            .and_then(|s| config_file::rewrite(path, &s))
    {
        error!("the config file was not brought in step: {e}");
        ok = false;
    }
    if ok { Ok(()) } else { Err(()) }
}

/// A new server (or an existing one at its new address), health-checked and ready.
fn add(api: &Runtime, backend: &str, member: &Member) -> Result<&'static str, String> {
    let server = format!("{backend}/{}", member.server);
    let existing = api
        .servers(backend)?
        .into_iter()
        .find(|s| s.name == member.server);
    let done = match existing {
        None => {
            let at = format!("{}:{}", member.ip, member.port);
            api.expect(
                &format!("add server {server} {at} check"),
                "New server registered.",
            )?;
            api.expect(&format!("enable health {server}"), "")?;
            "added"
        }
        Some(s) if s.addr == member.ip && s.port == member.port => "already there, made ready",
        Some(_) => {
            api.expect(&format!("set server {server} state maint"), "")?;
            let command = format!(
                "set server {server} addr {} port {}",
                member.ip, member.port
            );
            match api.command(&command) {
                Ok(answer) if answer.starts_with("IP changed") || answer.starts_with("no need") => {
                }
                Ok(answer) => return Err(format!("`{command}`: HAProxy answered {answer:?}")),
                Err(e) => return Err(format!("`{command}`: {e}")),
            }
            "moved to its new address"
        }
    };
    api.expect(&format!("set server {server} state ready"), "")?;
    Ok(done)
}

/// No new requests, the ones in flight finish (up to `timeout`), then the server goes.
fn drain_then_remove(
    api: &Runtime,
    backend: &str,
    server: &str,
    timeout: Duration,
) -> Result<&'static str, String> {
    if !exists(api, backend, server)? {
        return Ok("not a server (nothing to do)");
    }
    api.expect(&format!("set server {server} state drain"), "")?;
    let drained = wait_for_no_sessions(api, backend, server, timeout)?;
    if !drained {
        warn!("{server}: sessions still open after {timeout:?}; cutting them");
    }
    remove(api, backend, server, Duration::ZERO)?;
    Ok(if drained {
        "drained and removed"
    } else {
        "removed after the drain timeout"
    })
}

/// Out at once: maintenance (no new requests), its sessions cut once `grace` has passed
/// (at once for zero), deleted.
fn remove(
    api: &Runtime,
    backend: &str,
    server: &str,
    grace: Duration,
) -> Result<&'static str, String> {
    if !exists(api, backend, server)? {
        return Ok("not a server (nothing to do)");
    }
    api.expect(&format!("set server {server} state maint"), "")?;
    if !wait_for_no_sessions(api, backend, server, grace)? {
        api.expect(&format!("shutdown sessions server {server}"), "")?;
        wait_for_no_sessions(api, backend, server, CUT_SESSIONS_TIMEOUT)?;
    }
    api.expect(&format!("del server {server}"), "Server deleted.")?;
    Ok("removed")
}

fn exists(api: &Runtime, backend: &str, server: &str) -> Result<bool, String> {
    let name = server.rsplit('/').next().unwrap_or(server);
    Ok(api.servers(backend)?.iter().any(|s| s.name == name))
}

/// Whether the server's sessions reached 0 within `timeout`.
fn wait_for_no_sessions(
    api: &Runtime,
    backend: &str,
    server: &str,
    timeout: Duration,
) -> Result<bool, String> {
    let name = server.rsplit('/').next().unwrap_or(server);
    let deadline = Instant::now() + timeout;
    loop {
        if api.sessions(backend, name)? == 0 {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(DRAIN_CHECK_EVERY);
    }
}
