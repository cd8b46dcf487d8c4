//! Signals from outside the container: `docker kill -s HUP` reaches every service, and
//! `docker stop` stops them all with SIGTERM (no SIGKILL needed: exit code 0) in well
//! under Docker's 10 s; the same under `docker run --init` and as a non-root user. The
//! services are `fixtures/signals.d`: two shell scripts that log the signals they get.

use std::time::{Duration, Instant};

use crate::docker::{Container, docker, fixture, images};

#[test]
fn docker_kill_hup_and_docker_stop_reach_every_service() {
    hup_then_stop(&[]);
}

#[test]
fn docker_kill_hup_and_docker_stop_reach_every_service_under_docker_init() {
    hup_then_stop(&["--init"]);
}

#[test]
fn docker_kill_hup_and_docker_stop_reach_every_service_as_a_non_root_user() {
    hup_then_stop(&["--user", "1000:1000"]);
}

fn hup_then_stop(options: &[&str]) {
    let Some(images) = images() else { return };
    let container = Container::new("signals");
    let services = format!("{}:/etc/services.d:ro", fixture("signals.d"));
    let mut all = vec!["-v", &services];
    all.extend(options);
    let run = container.start(&all, &images.example, &[]);
    for service in ["one", "two"] {
        run.wait_for_line(&format!("{service} | ready"));
    }

    docker(&["kill", "--signal", "HUP", &container.name]);
    for service in ["one", "two"] {
        run.wait_for_line(&format!("{service} | got HUP"));
    }

    let start = Instant::now();
    docker(&["stop", &container.name]);
    let stop_time = start.elapsed();
    let (code, output) = run.finish();
    assert_eq!(code, 0, "docker stop ends the container cleanly\n{output}");
    for service in ["one", "two"] {
        assert!(
            output.contains(&format!("{service} | got TERM")),
            "{service} got SIGTERM\n{output}"
        );
    }
    assert!(
        !output.contains("SIGKILL"),
        "no service needed SIGKILL\n{output}"
    );
    // Docker's own SIGKILL would come after 10 s; pidvisor takes milliseconds, the rest
    // is the engine. Loaded CI machines get a wide margin.
    assert!(
        stop_time < Duration::from_secs(5),
        "docker stop took {stop_time:?}\n{output}"
    );
    println!("docker stop {options:?}: {stop_time:?}");
}
