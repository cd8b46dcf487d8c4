//! Zombies: a service that double-forks (`fixtures/orphans.d`) leaves none. Its orphans
//! are adopted by pidvisor (PID 1, or under `docker run --init` a subreaper below
//! Docker's tini, which would otherwise get them), exit, and are reaped: neither
//! `docker top` nor the container's `/proc` shows a zombie. The same as a non-root user.

use std::thread;
use std::time::{Duration, Instant};

use crate::docker::{Container, PATIENCE, docker, fixture, images};

const ORPHANS: usize = 5;

#[test]
fn a_double_forking_service_leaves_no_zombie() {
    no_zombies(&[]);
}

#[test]
fn a_double_forking_service_leaves_no_zombie_under_docker_init() {
    no_zombies(&["--init"]);
}

#[test]
fn a_double_forking_service_leaves_no_zombie_as_a_non_root_user() {
    no_zombies(&["--user", "1000:1000"]);
}

fn no_zombies(options: &[&str]) {
    let Some(images) = images() else { return };
    let container = Container::new("zombies");
    let services = format!("{}:/etc/services.d:ro", fixture("orphans.d"));
    let mut all = vec!["-v", &services];
    all.extend(options);
    let run = container.start(&all, &images.example, &[]);

    let adopters: Vec<String> = run
        .wait_for_lines("adopted by ", ORPHANS)
        .iter()
        .map(|line| line.rsplit(' ').next().unwrap_or_default().to_owned())
        .collect();
    // The adopter is pidvisor: its file is /init, so its name is "init" (Docker's tini
    // is "docker-init"); as a subreaper it is not PID 1.
    for adopter in &adopters {
        let name = container.sh(&format!("cat /proc/{adopter}/comm"));
        assert_eq!(name.trim(), "init", "orphan adopted by pid {adopter}");
        assert_eq!(
            adopter == "1",
            !options.contains(&"--init"),
            "adopted by PID 1 exactly when pidvisor is PID 1 ({adopter})"
        );
    }

    // Reaping follows the exits at once; poll both views until neither shows a zombie.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let states = container.sh("cat /proc/[0-9]*/stat 2>/dev/null; true");
        let zombies: Vec<&str> = states.lines().filter(|l| state(l) == Some('Z')).collect();
        let top = docker(&["top", &container.name, "-eo", "pid,stat,comm"]);
        let top_zombies: Vec<&str> = top
            .lines()
            .skip(1)
            .filter(|l| {
                l.split_whitespace()
                    .nth(1)
                    .is_some_and(|s| s.starts_with('Z'))
            })
            .collect();
        if zombies.is_empty() && top_zombies.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "zombies left after {PATIENCE:?}: /proc {zombies:?}, docker top {top_zombies:?}"
        );
        thread::sleep(Duration::from_millis(50));
    }
    // The orphans are gone altogether (not left running, which would also show no zombie).
    let left = container.sh("cat /proc/[0-9]*/comm 2>/dev/null; true");
    assert!(
        !left.lines().any(|name| name == "orphan"),
        "an orphan is still running:\n{left}"
    );
}

/// The state letter of a `/proc/PID/stat` line (after the parenthesised name).
fn state(stat: &str) -> Option<char> {
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}
