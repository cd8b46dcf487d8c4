//! The collector's files, read with `docker exec`: one per web node,
//! `/var/log/cluster/HOSTNAME.log`, a line per access-log line shipped by the node's
//! logfwd (`TIMESTAMP HOSTNAME APP PROCID CLIENT GET /?req=N 200 ...`).

use std::collections::BTreeMap;
use std::process::Command;

use crate::docker::{PATIENCE, run_bounded};

/// How many times each request id of the loop appears in `node`'s file (none if there is
/// no file yet).
pub fn request_ids(collector: &str, node: &str) -> BTreeMap<u64, usize> {
    let path = format!("/var/log/cluster/{node}.log");
    let output = run_bounded(
        Command::new("docker").args(["exec", collector, "cat", &path]),
        PATIENCE,
    )
    .unwrap_or_else(|why| panic!("{why}"));
    let mut counts = BTreeMap::new();
    for id in output.stdout.lines().filter_map(request_id) {
        *counts.entry(id).or_insert(0) += 1;
    }
    counts
}

/// The N of ` GET /?req=N ` in a line of the collector's file.
fn request_id(line: &str) -> Option<u64> {
    let (_, rest) = line.split_once(" GET /?req=")?;
    rest.split(' ').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_in_collector_lines() {
        let line = "2026-12-03T08:00:00.123456+00:00 0a1b2c3d4e5f webapp 12 172.18.0.2 GET /?req=42 200 151 0.311";
        assert_eq!(request_id(line), Some(42));
        assert_eq!(request_id("... GET /health 200 3 0.1"), None);
    }
}
