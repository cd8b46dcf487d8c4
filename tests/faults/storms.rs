//! A crash storm: 30 services crash-looping at 10 ms pauses while four clients hammer the
//! control socket with `pidvisorctl status` (all, one, JSON or table) and `signal`.
//! Every reply is well-formed (JSON that lists all 30 services, a table with 30 rows, or
//! a refusal with exit code 1 for a signal to a service that is not running), no client
//! ever fails to talk to pidvisor, and the latencies are reported (not asserted: the
//! machine may be loaded).

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::ctl::ctl;
use crate::harness::heavy;
use crate::layout::{Layout, log_count};

const SERVICES: usize = 30;
const CLIENTS: usize = 4;
const REQUESTS_PER_CLIENT: usize = 150;

fn name(index: usize) -> String {
    format!("c{index:02}")
}

/// One request, chosen by `turn`; Err describes a malformed or failed reply.
fn request(layout: &Layout, turn: usize) -> Result<(), String> {
    let one = name(turn % SERVICES);
    let args: Vec<&str> = match turn % 4 {
        0 => vec!["status", "--json"],
        1 => vec!["status", &one, "--json"],
        2 => vec!["status"],
        _ => vec!["signal", &one, "TERM"],
    };
    let output = ctl(&layout.dir, &args);
    let code = output.status.code().unwrap_or(-1);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let well_formed = match (turn % 4, code) {
        (0 | 1, 0) => {
            serde_json::from_str::<serde_json::Value>(&stdout)
                .ok()
                .and_then(|v| v["services"].as_array().map(Vec::len))
                == Some(if turn.is_multiple_of(4) { SERVICES } else { 1 })
        }
        (2, 0) => stdout.lines().count() == SERVICES + 1,
        (3, 0) => true,
        (3, 1) => stderr.contains("no process to signal"),
        _ => false,
    };
    if well_formed {
        Ok(())
    } else {
        Err(format!(
            "pidvisorctl {args:?}: code {code}, stdout {stdout:?}, stderr {stderr:?}"
        ))
    }
}

#[test]
fn a_crash_storm_leaves_every_control_reply_well_formed() {
    let _heavy = heavy();
    let layout = Arc::new(Layout::new("crash-storm"));
    for index in 0..SERVICES {
        layout.service_with(
            &name(index),
            "exit 1",
            "restart-delay = \"10ms\"\nrestart-factor = 1.0\nmax-restarts = 0\n",
        );
    }
    let mut pidvisor = layout.start();
    pidvisor.wait_until("the storm is on", |p| {
        log_count(&p.stderr_so_far(), ": started (pid") > SERVICES * 3
    });
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let layout = Arc::clone(&layout);
            thread::spawn(move || {
                let mut slowest = Duration::ZERO;
                let mut errors = Vec::new();
                for turn in 0..REQUESTS_PER_CLIENT {
                    let start = Instant::now();
                    if let Err(e) = request(&layout, turn + client) {
                        errors.push(e);
                    }
                    slowest = slowest.max(start.elapsed());
                }
                (slowest, errors)
            })
        })
        .collect();
    let before = log_count(&pidvisor.stderr_so_far(), ": started (pid");
    let mut slowest = Duration::ZERO;
    let mut errors = Vec::new();
    for client in clients {
        let (client_slowest, client_errors) = client.join().expect("client thread");
        slowest = slowest.max(client_slowest);
        errors.extend(client_errors);
    }
    let during = log_count(&pidvisor.stderr_so_far(), ": started (pid") - before;
    let run = pidvisor.shut_down();
    println!(
        "crash storm: {SERVICES} services, {during} restarts while {CLIENTS} clients made {} \
         requests; slowest reply {slowest:?}; malformed or failed: {}",
        CLIENTS * REQUESTS_PER_CLIENT,
        errors.len()
    );
    assert!(
        errors.is_empty(),
        "{} bad replies, first: {}\n{run}",
        errors.len(),
        errors[0]
    );
    assert!(
        during > SERVICES,
        "the services crashed on meanwhile: {during} restarts"
    );
}
