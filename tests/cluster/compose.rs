//! compose.yaml under `docker-compose`: lb, collector and 3 web nodes, scaled to 5; under a
//! steady request loop one web node is killed (`docker kill`) and another stopped
//! (`docker stop`). HAProxy's server list must equal the live nodes within seconds of
//! each, the loop may lose only requests in flight to the killed node and none while the
//! stopped one drains, and the collector must hold the request lines of every node that
//! was not killed, each exactly once. The figures are printed (`--nocapture`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::docker::{PATIENCE, docker, run_bounded};
use crate::images::{COMPOSE_FILE, Cluster, cluster};
use crate::load::{self, Load, Request};
use crate::{collector, lb, one_at_a_time, wait};

/// How long HAProxy may take to follow a change: gossip declares a silent node failed
/// after about 5 to 7 s, a leave spreads within a second. Generous for a loaded machine.
const FOLLOW_PATIENCE: Duration = Duration::from_secs(30);

#[test]
fn haproxy_follows_web_nodes_that_join_fail_and_leave_under_a_request_loop() {
    let _serial = one_at_a_time();
    let Some(cluster) = cluster() else { return };
    let took = Instant::now();
    let project = Project::up(cluster, 3);
    let lb = project.container("lb");
    let collector = project.container("collector");
    let webs = project.containers("web");
    assert_eq!(webs.len(), 3, "--scale web=3");
    let names: Vec<String> = webs.iter().map(|web| lb::server_name(web)).collect();
    wait_for_servers_up(&lb, &names);

    let scaled = Instant::now();
    project.compose(&["up", "--detach", "--no-build", "--scale", "web=5"]);
    let webs = project.containers("web");
    assert_eq!(webs.len(), 5, "--scale web=5");
    let names: Vec<String> = webs.iter().map(|web| lb::server_name(web)).collect();
    wait_for_servers_up(&lb, &names);
    let join_time = scaled.elapsed();
    let stats = lb::stats_csv(project.published("lb", 8404)).unwrap_or_else(|why| panic!("{why}"));
    for name in &names {
        assert!(
            stats.contains(&format!("\nweb,{name},")),
            "the stats page lists {name}:\n{stats}"
        );
    }

    let load = Load::start(project.published("lb", 80));
    wait::until("the loop reached all 5 nodes", PATIENCE, || {
        let answered: BTreeSet<String> = load
            .so_far()
            .into_iter()
            .filter_map(|r| r.outcome.ok())
            .collect();
        if answered.len() == 5 {
            Ok(())
        } else {
            Err(answered)
        }
    });

    // docker kill: no leave, the node just vanishes; gossip reports it failed.
    let (killed, stopped) = (&webs[0], &webs[1]);
    let killed_name = &names[0];
    let kill_started = Instant::now();
    docker(&["kill", killed]);
    let live: BTreeSet<String> = names[1..].iter().cloned().collect();
    let ((), kill_time) = wait::until("HAProxy dropped the killed node", FOLLOW_PATIENCE, || {
        same_names(lb::servers(&lb)?, &live)
    });
    let kill_ended = Instant::now();

    // docker stop: gossip leaves first, HAProxy drains the node, then the web app stops.
    let stop_started = Instant::now();
    let stop = {
        let stopped = stopped.clone();
        thread::spawn(move || docker(&["stop", &stopped]))
    };
    let live: BTreeSet<String> = names[2..].iter().cloned().collect();
    let ((), leave_time) = wait::until("HAProxy dropped the stopped node", FOLLOW_PATIENCE, || {
        same_names(lb::servers(&lb)?, &live)
    });
    stop.join().expect("docker stop returned");
    let stop_time = stop_started.elapsed();
    let stop_ended = Instant::now();

    // A little more traffic on the three that are left, then the loop ends.
    wait::until("100 more answers after the stop", PATIENCE, || {
        let after = load
            .so_far()
            .iter()
            .filter(|r| r.started > stop_ended && r.outcome.is_ok())
            .count();
        if after >= 100 { Ok(()) } else { Err(after) }
    });
    let requests = load.finish();

    let failed: Vec<&Request> = requests.iter().filter(|r| r.outcome.is_err()).collect();
    let during_kill = failed
        .iter()
        .filter(|r| load::overlaps(r, kill_started, kill_ended))
        .count();
    let during_stop = failed
        .iter()
        .filter(|r| load::overlaps(r, stop_started, stop_ended))
        .count();
    let span = match (requests.first(), requests.last()) {
        (Some(first), Some(last)) => last.ended.saturating_duration_since(first.started),
        _ => Duration::ZERO,
    };
    println!(
        "cluster (Compose): {} requests by {} clients in {span:.1?}; 3 -> 5 web nodes in HAProxy {join_time:?} \
         after `up --scale web=5`; killed node out of HAProxy {kill_time:?} after docker kill, \
         {during_kill} failed request(s) meanwhile; stopped node out {leave_time:?} after \
         docker stop began (docker stop took {stop_time:?}), {during_stop} failed request(s) \
         meanwhile",
        requests.len(),
        load::CLIENTS,
    );
    for request in &failed {
        println!(
            "  failed: request {} after {:?}: {:?}",
            request.id,
            request.ended - request.started,
            request.outcome
        );
    }
    assert_eq!(
        during_stop, 0,
        "no request fails while a node drains: {failed:#?}"
    );
    assert!(
        during_kill <= load::CLIENTS && during_kill == failed.len(),
        "only requests in flight to the killed node may fail (at most one per client), and \
         none outside that moment: {failed:#?}"
    );

    // Every node but the killed one (the stopped one included: its forwarder flushed at
    // the stop) shipped each of its request lines, exactly once.
    let mut answered: BTreeMap<&str, BTreeSet<u64>> = BTreeMap::new();
    for request in &requests {
        if let Ok(node) = &request.outcome {
            answered.entry(node).or_default().insert(request.id);
        }
    }
    for name in names.iter().filter(|name| *name != killed_name) {
        let expected = answered.get(name.as_str()).cloned().unwrap_or_default();
        assert!(!expected.is_empty(), "{name} answered requests");
        assert_collector_has_exactly(&collector, name, &expected);
    }
    println!("cluster (Compose) test: {:?} in all", took.elapsed());
}

/// Until HAProxy's servers are exactly `names`, all up.
fn wait_for_servers_up(lb: &str, names: &[String]) {
    let what = format!("HAProxy has the {} web nodes, up", names.len());
    wait::until(&what, PATIENCE, || {
        let servers = lb::servers(lb)?;
        if lb::exactly_up(&servers, names) {
            Ok(())
        } else {
            Err(format!("{servers:?}"))
        }
    });
}

/// The collector's file of `node` holds the line of each request in `expected`, exactly
/// once, and no other request of the loop (waited for: the lines are shipped as they come).
fn assert_collector_has_exactly(collector: &str, node: &str, expected: &BTreeSet<u64>) {
    let what = format!("the collector has {node}'s lines");
    let (logged, _) = wait::until(&what, PATIENCE, || {
        let logged = collector::request_ids(collector, node);
        if expected.iter().all(|id| logged.contains_key(id)) {
            Ok(logged)
        } else {
            Err(logged.len())
        }
    });
    let logged_ids: BTreeSet<u64> = logged.keys().copied().collect();
    assert_eq!(
        &logged_ids, expected,
        "{node}: the collector has exactly its requests"
    );
    let repeated: Vec<(&u64, &usize)> = logged.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        repeated.is_empty(),
        "{node}: lines in the collector more than once: {repeated:?}"
    );
}

/// Whether HAProxy's servers are exactly `live` (by name), else what they are.
fn same_names(
    servers: BTreeMap<String, lb::Server>,
    live: &BTreeSet<String>,
) -> Result<(), String> {
    let names: BTreeSet<String> = servers.into_keys().collect();
    if &names == live {
        Ok(())
    } else {
        Err(format!("{names:?}"))
    }
}

/// A Compose project of this test run, taken down with its containers, networks and
/// volumes when dropped, whether the test passed or not.
struct Project {
    name: String,
    env: Vec<(&'static str, String)>,
}

impl Project {
    /// `docker-compose up --detach --scale web=N`, without building (the images are).
    fn up(cluster: &Cluster, web: usize) -> Project {
        let project = Project {
            name: format!("pidvisor-test-cluster-{}", std::process::id()),
            env: cluster.env.clone(),
        };
        project.compose(&[
            "up",
            "--detach",
            "--no-build",
            "--scale",
            &format!("web={web}"),
        ]);
        project
    }

    /// `docker-compose ARGS` in this project, which must succeed: its stdout.
    fn compose(&self, args: &[&str]) -> String {
        let output = run_bounded(
            Command::new("docker-compose")
                .args(["--file", COMPOSE_FILE, "--project-name", &self.name])
                .args(args)
                .envs(self.env.iter().map(|(key, value)| (key, value))),
            PATIENCE,
        )
        .unwrap_or_else(|why| panic!("{why}"));
        assert!(
            output.status.success(),
            "docker-compose {args:?} failed:\n{}{}",
            output.stdout,
            output.stderr
        );
        output.stdout
    }

    /// The ids of the service's containers.
    fn containers(&self, service: &str) -> Vec<String> {
        self.compose(&["ps", "--quiet", service])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The service's only container.
    fn container(&self, service: &str) -> String {
        let mut containers = self.containers(service);
        assert_eq!(containers.len(), 1, "one {service} container");
        containers.swap_remove(0)
    }

    /// Where the service's `port` is published, on loopback.
    fn published(&self, service: &str, port: u16) -> SocketAddr {
        let published = self.compose(&["port", service, &port.to_string()]);
        let host_port = published
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse::<u16>().ok())
            .unwrap_or_else(|| panic!("docker-compose port {service} {port}: {published:?}"));
        SocketAddr::from(([127, 0, 0, 1], host_port))
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = run_bounded(
            Command::new("docker-compose")
                .args(["--file", COMPOSE_FILE, "--project-name", &self.name])
                .args(["down", "--volumes", "--remove-orphans", "--timeout", "5"])
                .envs(self.env.iter().map(|(key, value)| (key, value))),
            PATIENCE,
        );
    }
}
