//! A private LAN for each test: a "hub" network namespace holding a bridge, and one
//! namespace per node plugged into it by a veth pair, with addresses 10.77.0.N/24.
//!
//! Nothing is added to the host's own namespace, names carry the test process's pid and a
//! counter (tests run in parallel), and everything is deleted on drop, even when the test
//! fails.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct Lan {
    hub: String,
    nodes: Vec<String>,
}

impl Lan {
    pub fn new() -> Lan {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let hub = format!(
            "gossip-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        ip(&["netns", "add", &hub]);
        let lan = Lan {
            hub,
            nodes: Vec::new(),
        };
        lan.ip_in_hub(&["link", "add", "br0", "type", "bridge"]);
        lan.ip_in_hub(&["link", "set", "br0", "up"]);
        lan
    }

    /// A new node's namespace, with its address 10.77.0.N (N = 1, 2, ...): its name for
    /// `ip netns exec`, and the address.
    pub fn add_node(&mut self) -> (String, String) {
        let number = self.nodes.len() + 1;
        let namespace = format!("{}-n{number}", self.hub);
        ip(&["netns", "add", &namespace]);
        self.nodes.push(namespace.clone());
        let port = format!("port{number}");
        self.ip_in_hub(&[
            "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &namespace,
        ]);
        self.ip_in_hub(&["link", "set", &port, "master", "br0", "up"]);
        let address = format!("10.77.0.{number}");
        ip(&[
            "-n",
            &namespace,
            "addr",
            "add",
            &format!("{address}/24"),
            "dev",
            "eth0",
        ]);
        ip(&["-n", &namespace, "link", "set", "eth0", "up"]);
        ip(&["-n", &namespace, "link", "set", "lo", "up"]);
        (namespace, address)
    }

    /// The namespace of node `number` (1, 2, ...), added before.
    pub fn namespace(&self, number: usize) -> String {
        self.nodes[number - 1].clone()
    }

    fn ip_in_hub(&self, args: &[&str]) {
        let mut words = vec!["-n", self.hub.as_str()];
        words.extend_from_slice(args);
        ip(&words);
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for namespace in self.nodes.iter().chain(std::iter::once(&self.hub)) {
            let _ = Command::new("ip")
                .args(["netns", "del", namespace])
                .status();
        }
    }
}

fn ip(args: &[&str]) {
    let output = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("running ip {args:?}: {error} (install iproute2)"));
    assert!(
        output.status.success(),
        "ip {args:?} failed ({}): {} (these tests need root for network namespaces)",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}
