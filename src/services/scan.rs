//! The services folder: every service in it, checked one by one and then together, and
//! the order to start them in.
//!
//! A broken service is reported and left out; the others still load. Across services,
//! `after` must name a service that loads, and dependency cycles are not allowed: a
//! service that fails either check is left out too, which can in turn leave out the
//! services that wait for it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::services::config::{self, ConfigError};
use crate::services::privilege;
use crate::services::spec::ServiceSpec;
use crate::services::users::UserDb;

/// The services that loaded (sorted by name) and every problem found.
#[derive(Debug, Default)]
pub struct ScanResult {
    pub services: Vec<ServiceSpec>,
    pub problems: Vec<ConfigError>,
}

/// Reads every service in `dir`. A missing `dir` simply has no services.
pub fn scan(dir: &Path) -> ScanResult {
    // Read only when a service sets a user: most never open them.
    scan_with(dir, &UserDb::system())
}

fn scan_with(dir: &Path, users: &UserDb) -> ScanResult {
    let mut result = ScanResult::default();
    let mut left_out = BTreeSet::new();
    for (name, path) in service_folders(dir, &mut result.problems) {
        match config::load_service(&path, &name, users)
            .and_then(|spec| privilege::check_user(spec, &path))
        {
            Ok(spec) => result.services.push(spec),
            Err(problems) => {
                result.problems.extend(problems);
                left_out.insert(name);
            }
        }
    }
    check_dependencies(dir, &mut result, left_out);
    result
}

/// Layers of indices into `services`: each service comes after every service it names in
/// `after`, and the services of one layer can start in parallel. Sorted by name within a
/// layer. Expects the output of [`scan`]: unknown names are ignored, and services in a
/// cycle (which scan leaves out) would be missing.
pub fn start_order(services: &[ServiceSpec]) -> Vec<Vec<usize>> {
    let index = name_index(services);
    let mut placed = vec![false; services.len()];
    let mut layers = Vec::new();
    loop {
        let mut layer: Vec<usize> = (0..services.len())
            .filter(|&i| !placed[i])
            .filter(|&i| {
                let after = &services[i].after;
                after
                    .iter()
                    .all(|dep| index.get(dep.as_str()).is_none_or(|&d| placed[d]))
            })
            .collect();
        if layer.is_empty() {
            return layers;
        }
        layer.sort_by(|&a, &b| services[a].name.cmp(&services[b].name));
        for &i in &layer {
            placed[i] = true;
        }
        layers.push(layer);
    }
}

/// `(name, path)` of each service folder, sorted by name.
fn service_folders(dir: &Path, problems: &mut Vec<ConfigError>) -> Vec<(String, PathBuf)> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Vec::new(),
        Err(err) => {
            problems.push(folder_problem(dir, None, format!("cannot read it: {err}")));
            return Vec::new();
        }
    };
    let mut folders = Vec::new();
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => {
                problems.push(folder_problem(dir, None, format!("cannot read it: {err}")));
                continue;
            }
        };
        let path = entry.path();
        let name = entry.file_name();
        if name.as_encoded_bytes().starts_with(b".") {
            continue;
        }
        if !path.is_dir() {
            tracing::debug!("{}: not a directory, skipped", path.display());
            continue;
        }
        match name.into_string() {
            Ok(name) => folders.push((name, path)),
            Err(name) => {
                let name = name.to_string_lossy().into_owned();
                let message = "the folder name is not valid UTF-8".to_owned();
                problems.push(folder_problem(&path, Some(name), message));
            }
        }
    }
    folders.sort();
    folders
}

fn folder_problem(path: &Path, service: Option<String>, message: String) -> ConfigError {
    ConfigError {
        service,
        file: path.to_owned(),
        field: None,
        line_col: None,
        message,
        fix: "fix the folder (or its permissions) so that pidvisor can read it".to_owned(),
    }
}

/// Leaves out, until nothing changes, every service whose `after` names a service that did
/// not load, and every service in a dependency cycle.
fn check_dependencies(dir: &Path, result: &mut ScanResult, mut left_out: BTreeSet<String>) {
    loop {
        let mut problems = dangling_after(dir, &result.services, &left_out);
        if problems.is_empty()
            && let Some(cycle) = find_cycle(&result.services)
        {
            problems = cycle_problems(dir, &cycle);
        }
        if problems.is_empty() {
            return;
        }
        for problem in &problems {
            left_out.extend(problem.service.clone());
        }
        result.services.retain(|s| !left_out.contains(&s.name));
        result.problems.extend(problems);
    }
}

fn dangling_after(
    dir: &Path,
    services: &[ServiceSpec],
    left_out: &BTreeSet<String>,
) -> Vec<ConfigError> {
    let index = name_index(services);
    let mut problems = Vec::new();
    for spec in services {
        for dep in spec
            .after
            .iter()
            .filter(|dep| !index.contains_key(dep.as_str()))
        {
            let (message, fix) = match left_out.contains(dep) {
                true => (
                    format!("\"{dep}\" is left out (see its problems)"),
                    format!("fix \"{dep}\" first"),
                ),
                false => (
                    format!("\"{dep}\" is not a service"),
                    format!(
                        "create {}, or remove it from after",
                        dir.join(dep).display()
                    ),
                ),
            };
            problems.push(after_problem(dir, &spec.name, message, fix));
        }
    }
    problems
}

/// One problem for each service of the cycle, which it names from that service on.
fn cycle_problems(dir: &Path, cycle: &[&str]) -> Vec<ConfigError> {
    (0..cycle.len())
        .map(|start| {
            let mut path: Vec<&str> = cycle[start..]
                .iter()
                .chain(&cycle[..start])
                .copied()
                .collect();
            path.push(cycle[start]);
            let message = format!("dependency cycle: {}", path.join(" -> "));
            let fix = "remove one of these `after` entries".to_owned();
            after_problem(dir, cycle[start], message, fix)
        })
        .collect()
}

fn after_problem(dir: &Path, service: &str, message: String, fix: String) -> ConfigError {
    ConfigError {
        service: Some(service.to_owned()),
        file: dir.join(service).join("service.toml"),
        field: Some("after".to_owned()),
        line_col: None,
        message,
        fix,
    }
}

/// The names of one dependency cycle (each waits for the next, the last for the first),
/// or `None`. Searched from the first name in order, so the answer is deterministic.
fn find_cycle(services: &[ServiceSpec]) -> Option<Vec<&str>> {
    let index = name_index(services);
    let mut done = vec![false; services.len()];
    let mut path = Vec::new();
    (0..services.len()).find_map(|start| {
        let cycle = walk(start, services, &index, &mut done, &mut path)?;
        Some(
            cycle
                .into_iter()
                .map(|i| services[i].name.as_str())
                .collect(),
        )
    })
}

/// Depth-first search from `node`; `path` holds the services being visited.
fn walk(
    node: usize,
    services: &[ServiceSpec],
    index: &BTreeMap<&str, usize>,
    done: &mut [bool],
    path: &mut Vec<usize>,
) -> Option<Vec<usize>> {
    if let Some(pos) = path.iter().position(|&n| n == node) {
        return Some(path[pos..].to_vec());
    }
    if done[node] {
        return None;
    }
    path.push(node);
    for dep in &services[node].after {
        if let Some(&next) = index.get(dep.as_str())
            && let Some(cycle) = walk(next, services, index, done, path)
        {
            return Some(cycle);
        }
    }
    path.pop();
    done[node] = true;
    None
}

fn name_index(services: &[ServiceSpec]) -> BTreeMap<&str, usize> {
    services
        .iter()
        .enumerate()
        .map(|(i, spec)| (spec.name.as_str(), i))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::test_dir::TempDir;

    fn names(result: &ScanResult) -> Vec<&str> {
        result.services.iter().map(|s| s.name.as_str()).collect()
    }

    fn problems(result: &ScanResult) -> Vec<String> {
        result.problems.iter().map(|p| p.to_string()).collect()
    }

    fn after(list: &[&str]) -> String {
        format!("after = {list:?}\n")
    }

    #[test]
    fn missing_dir_is_empty_not_an_error() {
        let result = scan(Path::new("/nonexistent/services.d"));
        assert!(result.services.is_empty() && result.problems.is_empty());
    }

    #[test]
    fn services_without_a_user_leave_the_user_files_unread() {
        let dir = TempDir::new("scan-no-user");
        dir.service("web", None);
        let files = TempDir::new("scan-no-user-files");
        let users =
            UserDb::read_when_needed(files.path().join("passwd"), files.path().join("group"));
        assert_eq!(names(&scan_with(dir.path(), &users)), ["web"]);
        // Written after the scan: found all the same, since nothing read the file yet.
        files.write("passwd", "app:x:1000:1000::/home/app:/bin/sh\n");
        let app = users
            .resolve("app", None)
            .expect("read at the first lookup");
        assert_eq!(app.uid, 1000);
    }

    #[test]
    fn skips_dot_folders_and_plain_files_and_sorts_by_name() {
        let dir = TempDir::new("scan-skip");
        dir.service("web", None);
        dir.service("db", None);
        dir.service(".hidden", None);
        dir.write("README", "not a service");
        let result = scan_with(dir.path(), &UserDb::default());
        assert_eq!(names(&result), ["db", "web"]);
        assert!(result.problems.is_empty());
    }

    #[test]
    fn a_broken_service_does_not_take_the_others_down() {
        let dir = TempDir::new("scan-broken");
        dir.service("good", None);
        dir.service("bad", Some("restart = \"sometimes\"\nbogus = 1\n"));
        dir.write("norun/finish", "");
        let result = scan_with(dir.path(), &UserDb::default());
        assert_eq!(names(&result), ["good"]);
        let services: BTreeSet<_> = result
            .problems
            .iter()
            .filter_map(|p| p.service.clone())
            .collect();
        assert_eq!(
            services,
            BTreeSet::from(["bad".to_owned(), "norun".to_owned()])
        );
    }

    #[test]
    fn after_must_name_a_service_that_loads() {
        let dir = TempDir::new("scan-after");
        dir.service("web", Some(&after(&["db", "cache"])));
        dir.service("cache", Some("restart = 1\n"));
        dir.service("worker", Some(&after(&["web"])));
        let result = scan_with(dir.path(), &UserDb::default());
        assert!(names(&result).is_empty(), "{:?}", names(&result));
        let text = problems(&result).join("\n");
        assert!(
            text.contains("web/service.toml: after: \"cache\" is left out (see its problems)"),
            "{text}"
        );
        assert!(
            text.contains("web/service.toml: after: \"db\" is not a service"),
            "{text}"
        );
        assert!(
            text.contains("worker/service.toml: after: \"web\" is left out"),
            "{text}"
        );
    }

    #[test]
    fn cycles_are_left_out_and_named() {
        let dir = TempDir::new("scan-cycle");
        dir.service("a", Some(&after(&["b"])));
        dir.service("b", Some(&after(&["a"])));
        dir.service("self", Some(&after(&["self"])));
        dir.service("c", Some(&after(&["a"])));
        dir.service("d", None);
        let result = scan_with(dir.path(), &UserDb::default());
        assert_eq!(names(&result), ["d"]);
        let text = problems(&result).join("\n");
        assert!(
            text.contains("a/service.toml: after: dependency cycle: a -> b -> a"),
            "{text}"
        );
        assert!(
            text.contains("b/service.toml: after: dependency cycle: b -> a -> b"),
            "{text}"
        );
        assert!(
            text.contains("self/service.toml: after: dependency cycle: self -> self"),
            "{text}"
        );
        assert!(
            text.contains("c/service.toml: after: \"a\" is left out"),
            "{text}"
        );
    }

    #[test]
    fn start_order_is_layered_and_sorted() {
        let dir = TempDir::new("scan-order");
        dir.service("web", Some(&after(&["db", "cache"])));
        dir.service("db", None);
        dir.service("cache", Some(&after(&["db"])));
        dir.service("metrics", None);
        dir.service("proxy", Some(&after(&["web"])));
        let result = scan_with(dir.path(), &UserDb::default());
        assert!(result.problems.is_empty(), "{:?}", problems(&result));
        let layers: Vec<Vec<&str>> = start_order(&result.services)
            .into_iter()
            .map(|layer| {
                layer
                    .into_iter()
                    .map(|i| result.services[i].name.as_str())
                    .collect()
            })
            .collect();
        assert_eq!(
            layers,
            [
                vec!["db", "metrics"],
                vec!["cache"],
                vec!["web"],
                vec!["proxy"]
            ]
        );
    }
}
