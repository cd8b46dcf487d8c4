//! Handlers are bounded: one that outlives `--handler-timeout` is killed with everything
//! it started, reaped, and the events queued behind it still run.

use crate::harness::{TempDir, wait_until};
use crate::network::Lan;
use crate::node::{Node, PATIENCE};

#[test]
fn a_handler_past_its_timeout_is_killed_with_its_children_and_the_queue_goes_on() {
    let dir = TempDir::new("gossip-handler-timeout");
    let mut lan = Lan::new();
    let (namespace, address) = lan.add_node();
    // `sh -c` runs sleep as a child (the `echo` keeps the shell from exec'ing it).
    let slow = "member-join=sleep 1000; echo never";
    let first = Node::start(
        &dir,
        &namespace,
        &address,
        "n1",
        &["--handler-timeout", "1s", "--event-handler", slow],
    );
    first.wait_for_log("still running after 1s, killing it");
    wait_until(
        PATIENCE,
        "no handler process left, not even a zombie",
        || {
            first
                .processes()
                .iter()
                .all(|process| process.comm != "sleep" && process.state != 'Z')
        },
    );
    assert!(
        !first.log().contains("handler member-join: never"),
        "{}",
        first.log()
    );

    let (namespace, address) = lan.add_node();
    let _second = Node::start(
        &dir,
        &namespace,
        &address,
        "n2",
        &["--join", "10.77.0.1:7946"],
    );
    first.wait_for_event("member-join", "n2");
}
