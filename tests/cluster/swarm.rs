//! compose.yaml as a Swarm stack on a single-node swarm that the test makes for itself
//! (`docker swarm init` on loopback) and always leaves: `docker stack deploy` with the
//! locally built images (no registry), `docker service scale web=5`, and HAProxy's server
//! list follows to the 5 web tasks; a request through the lb's published port is answered
//! and its line reaches the collector.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::docker::{PATIENCE, docker, run_bounded};
use crate::images::{COMPOSE_FILE, Cluster, cluster};
use crate::{collector, lb, load, one_at_a_time, wait};

#[test]
fn the_same_file_deploys_as_a_swarm_stack_and_haproxy_follows_a_scale_to_5() {
    let _serial = one_at_a_time();
    let Some(cluster) = cluster() else { return };
    let took = Instant::now();
    let _swarm = Swarm::init();
    let stack = Stack::deploy(cluster);

    let (lb, _) = wait::until("the lb task runs", PATIENCE, || {
        let mut running = stack.running("lb");
        if running.len() == 1 {
            Ok(running.swap_remove(0))
        } else {
            Err(running)
        }
    });
    wait_for_servers(&stack, &lb, 3);

    let scaled = Instant::now();
    docker(&["service", "scale", "--detach", &stack.service("web=5")]);
    wait_for_servers(&stack, &lb, 5);
    let scale_time = scaled.elapsed();

    // The lb publishes in host mode (compose.yaml): the port is its container's.
    let published = docker(&["port", &lb, "80/tcp"]);
    let port: u16 = published
        .lines()
        .next()
        .and_then(|line| line.rsplit(':').next())
        .and_then(|port| port.trim().parse().ok())
        .unwrap_or_else(|| panic!("the lb's published port: {published:?}"));
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let (node, _) = wait::until("a request through the lb is answered", PATIENCE, || {
        load::get_node(address, 1)
    });
    let (collector, _) = wait::until("the collector task runs", PATIENCE, || {
        let mut running = stack.running("collector");
        if running.len() == 1 {
            Ok(running.swap_remove(0))
        } else {
            Err(running)
        }
    });
    wait::until(
        &format!("the collector has {node}'s line of the request"),
        PATIENCE,
        || {
            let logged = collector::request_ids(&collector, &node);
            if logged.get(&1) == Some(&1) {
                Ok(())
            } else {
                Err(logged)
            }
        },
    );
    println!(
        "cluster (Swarm): 3 -> 5 web tasks in HAProxy {scale_time:?} after `docker service \
         scale`; test {:?} in all (swarm init to leave)",
        took.elapsed()
    );
}

/// Until HAProxy's servers are exactly the `count` running web tasks, all up.
fn wait_for_servers(stack: &Stack, lb: &str, count: usize) {
    wait::until(
        &format!("HAProxy has the {count} web tasks, up"),
        PATIENCE,
        || {
            let names: Vec<String> = stack
                .running("web")
                .iter()
                .map(|c| lb::server_name(c))
                .collect();
            let servers = lb::servers(lb)?;
            if names.len() == count && lb::exactly_up(&servers, &names) {
                Ok(())
            } else {
                Err(format!("web tasks {names:?}, servers {servers:?}"))
            }
        },
    );
}

/// A single-node swarm of this test, left (`docker swarm leave --force`) when dropped,
/// with the bridge network that `swarm init` made removed too.
struct Swarm {
    had_gwbridge: bool,
}

impl Swarm {
    fn init() -> Swarm {
        let state = docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"]);
        assert_eq!(
            state.trim(),
            "inactive",
            "the engine is in a swarm already; the test makes and leaves its own \
             (`docker swarm leave --force` first)"
        );
        let swarm = Swarm {
            had_gwbridge: network_exists("docker_gwbridge"),
        };
        // Loopback only: the swarm's ports (2377, 7946, 4789) are not offered to the network.
        docker(&[
            "swarm",
            "init",
            "--advertise-addr",
            "127.0.0.1",
            "--listen-addr",
            "127.0.0.1:2377",
        ]);
        swarm
    }
}

impl Drop for Swarm {
    fn drop(&mut self) {
        let _ = run_bounded(
            Command::new("docker").args(["swarm", "leave", "--force"]),
            PATIENCE,
        );
        if !self.had_gwbridge {
            let _ = run_bounded(
                Command::new("docker").args(["network", "rm", "docker_gwbridge"]),
                PATIENCE,
            );
        }
    }
}

fn network_exists(name: &str) -> bool {
    run_bounded(
        Command::new("docker").args(["network", "inspect", name]),
        PATIENCE,
    )
    .is_ok_and(|output| output.status.success())
}

/// The stack of this test, removed when dropped: its services, then (waited for) their
/// containers and its network.
struct Stack {
    name: String,
}

impl Stack {
    fn deploy(cluster: &Cluster) -> Stack {
        let stack = Stack {
            name: format!("pidvisor-test-{}", std::process::id()),
        };
        // --resolve-image never: the images are local, there is no registry to ask.
        let output = run_bounded(
            Command::new("docker")
                .args(["stack", "deploy", "--resolve-image", "never"])
                .args(["--compose-file", COMPOSE_FILE, &stack.name])
                .envs(cluster.env.iter().map(|(key, value)| (key, value))),
            PATIENCE,
        )
        .unwrap_or_else(|why| panic!("{why}"));
        assert!(
            output.status.success(),
            "docker stack deploy failed:\n{}{}",
            output.stdout,
            output.stderr
        );
        stack
    }

    /// `SERVICE` of this stack, as Swarm names it (`STACK_SERVICE`).
    fn service(&self, service: &str) -> String {
        format!("{}_{service}", self.name)
    }

    /// The running containers of one of the stack's services.
    fn running(&self, service: &str) -> Vec<String> {
        let label = format!(
            "label=com.docker.swarm.service.name={}",
            self.service(service)
        );
        docker(&[
            "ps",
            "--quiet",
            "--filter",
            &label,
            "--filter",
            "status=running",
        ])
        .lines()
        .map(str::to_owned)
        .collect()
    }

    fn containers(&self) -> BTreeSet<String> {
        let label = format!("label=com.docker.stack.namespace={}", self.name);
        run_bounded(
            Command::new("docker").args(["ps", "--all", "--quiet", "--filter", &label]),
            PATIENCE,
        )
        .map(|output| output.stdout.lines().map(str::to_owned).collect())
        .unwrap_or_default()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = run_bounded(
            Command::new("docker").args(["stack", "rm", &self.name]),
            PATIENCE,
        );
        // `stack rm` returns at once; the tasks stop (and their containers go) after.
        let deadline = Instant::now() + PATIENCE;
        while !self.containers().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
        for container in self.containers() {
            let _ = run_bounded(
                Command::new("docker").args(["rm", "--force", "--volumes", &container]),
                PATIENCE,
            );
        }
    }
}
