//! Three agents on one LAN: convergence, handlers, crash and restart, graceful leave,
//! late seed.

use crate::harness::TempDir;
use crate::network::Lan;
use crate::node::{Node, PATIENCE, now};

/// A failure must reach the others within this: foca's LAN profile takes about 6 s (a
/// probe period, its indirect probes, 4 s of suspicion); the rest is room for a loaded
/// machine.
const FAILURE_BOUND: f64 = 20.0;

/// Joins and graceful leaves are told directly, not detected: about a second at most.
const NOTICE_BOUND: f64 = 10.0;

/// Starts `count` nodes n1, n2, ... at 10.77.0.1, .2, ...; all but n1 join through n1.
/// Returns them with the time each was started.
fn cluster(dir: &TempDir, lan: &mut Lan, count: usize) -> Vec<(Node, f64)> {
    (1..=count)
        .map(|number| {
            let (namespace, address) = lan.add_node();
            let name = format!("n{number}");
            let seed = ["--join", "10.77.0.1:7946"];
            let extra: &[&str] = if number == 1 { &[] } else { &seed };
            let started = now();
            (
                Node::start(dir, &namespace, &address, &name, extra),
                started,
            )
        })
        .collect()
}

fn all_alive(count: usize) -> Vec<(String, &'static str)> {
    (1..=count)
        .map(|number| (format!("n{number}"), "alive"))
        .collect()
}

fn wait_for_members(node: &Node, expected: &[(String, &str)]) {
    let pairs: Vec<(&str, &str)> = expected
        .iter()
        .map(|(name, status)| (name.as_str(), *status))
        .collect();
    node.wait_for_members(&pairs);
}

#[test]
fn three_agents_converge_and_handlers_get_serf_environment_and_stdin() {
    let dir = TempDir::new("gossip-converge");
    let mut lan = Lan::new();
    let nodes = cluster(&dir, &mut lan, 3);
    for (node, _) in &nodes {
        wait_for_members(node, &all_alive(3));
    }

    let (first, _) = &nodes[0];
    let own = first.wait_for_event("member-join", "n1");
    assert_eq!(own.environment, "self=n1 role=web zone=n1-zone");
    assert_eq!(own.members, ["n1\t10.77.0.1\tweb\trole=web,zone=n1-zone"]);
    for (index, (joiner, started)) in nodes.iter().enumerate().skip(1) {
        for (earlier, (node, _)) in nodes.iter().enumerate().filter(|(i, _)| *i != index) {
            let seen = node.wait_for_event("member-join", &joiner.name);
            let line = format!(
                "{}\t{}\tweb\trole=web,zone={}-zone",
                joiner.name, joiner.address, joiner.name
            );
            assert!(seen.members.contains(&line), "{seen:?} lacks {line:?}");
            assert_eq!(
                seen.environment,
                format!("self={0} role=web zone={0}-zone", node.name)
            );
            if earlier < index {
                eprintln!(
                    "join: {} started, {} ran its member-join handler {:.3} s later",
                    joiner.name,
                    node.name,
                    seen.at - started
                );
            }
        }
    }
    first.wait_for_log("handler member-join: recorded member-join");
}

#[test]
fn kill_9_of_an_agent_is_member_failed_at_the_others_and_its_restart_a_join() {
    let dir = TempDir::new("gossip-failed");
    let mut lan = Lan::new();
    let mut nodes = cluster(&dir, &mut lan, 3);
    for (node, _) in &nodes {
        wait_for_members(node, &all_alive(3));
    }
    let (victim, _) = &nodes[2];
    let killed = victim.kill_agent();
    for (node, _) in &nodes[..2] {
        let failed = node.wait_for_event("member-failed", "n3");
        let delay = failed.at - killed;
        eprintln!(
            "failure: n3 killed, {} ran member-failed {delay:.3} s later",
            node.name
        );
        assert!(
            delay < FAILURE_BOUND,
            "{} took {delay:.3} s to see the failure",
            node.name
        );
        assert!(
            !node
                .events()
                .iter()
                .any(|seen| seen.event == "member-leave"),
            "a crash was reported as a leave: {:#?}",
            node.events()
        );
        node.wait_for_members(&[("n1", "alive"), ("n2", "alive"), ("n3", "failed")]);
    }

    // The same node comes back (as pidvisor would restart it): a join again.
    let status = nodes[2].0.wait_for_exit();
    assert!(
        !status.success(),
        "a node whose agent got SIGKILL exited with {status}"
    );
    let (namespace, address) = (lan.namespace(3), nodes[2].0.address.clone());
    let restarted = now();
    let _back = Node::start(
        &dir,
        &namespace,
        &address,
        "n3",
        &["--join", "10.77.0.1:7946"],
    );
    for (node, _) in &nodes[..2] {
        let mut joins = Vec::new();
        crate::harness::wait_until(
            PATIENCE,
            format!("{} sees n3 join again", node.name),
            || {
                joins = node
                    .events()
                    .into_iter()
                    .filter(|seen| seen.event == "member-join" && seen.concerns("n3"))
                    .collect();
                joins.len() >= 2
            },
        );
        eprintln!(
            "rejoin: n3 restarted, {} ran member-join {:.3} s later",
            node.name,
            joins[1].at - restarted
        );
        wait_for_members(node, &all_alive(3));
    }
}

#[test]
fn sigterm_of_an_agent_is_member_leave_not_failed() {
    let dir = TempDir::new("gossip-leave");
    let mut lan = Lan::new();
    let mut nodes = cluster(&dir, &mut lan, 3);
    for (node, _) in &nodes {
        wait_for_members(node, &all_alive(3));
    }
    let terminated = nodes[2].0.terminate();
    for (node, _) in &nodes[..2] {
        let left = node.wait_for_event("member-leave", "n3");
        let delay = left.at - terminated;
        eprintln!(
            "leave: n3 got SIGTERM, {} ran member-leave {delay:.3} s later",
            node.name
        );
        assert!(
            delay < NOTICE_BOUND,
            "{} took {delay:.3} s to see the leave",
            node.name
        );
        node.wait_for_members(&[("n1", "alive"), ("n2", "alive"), ("n3", "left")]);
    }
    let (leaver, _) = &mut nodes[2];
    let status = leaver.wait_for_exit();
    assert!(
        status.success(),
        "the leaving agent's pidvisor exited with {status}"
    );
    leaver.wait_for_log("left the cluster (2 members told)");
    for (node, _) in &nodes[..2] {
        assert!(
            !node
                .events()
                .iter()
                .any(|seen| seen.event == "member-failed"),
            "a graceful leave was reported as a failure: {:#?}",
            node.events()
        );
    }
}

#[test]
fn an_agent_started_before_its_seed_joins_once_the_seed_is_up() {
    let dir = TempDir::new("gossip-late-seed");
    let mut lan = Lan::new();
    let (seed_namespace, seed_address) = lan.add_node();
    let (namespace, address) = lan.add_node();
    let early = Node::start(
        &dir,
        &namespace,
        &address,
        "n2",
        &["--join", "10.77.0.1:7946"],
    );
    // Two attempts while nothing answers: it retries instead of giving up.
    early.wait_for_log("join: announcing to 10.77.0.1:7946");
    crate::harness::wait_until(crate::node::PATIENCE, "a second join attempt", || {
        early
            .log()
            .matches("join: announcing to 10.77.0.1:7946")
            .count()
            >= 2
    });
    let seed_started = now();
    let seed = Node::start(&dir, &seed_namespace, &seed_address, "n1", &[]);
    for node in [&early, &seed] {
        node.wait_for_members(&[("n1", "alive"), ("n2", "alive")]);
    }
    let joined = early.wait_for_event("member-join", "n1");
    eprintln!(
        "late seed: n2 ran member-join of n1 {:.3} s after n1 started",
        joined.at - seed_started
    );
}
