//! `examples/s6-migration/Dockerfile`: an image written for s6-overlay v2 with only the
//! overlay swapped for pidvisor, built and run unchanged. Its scripts (with-contenv
//! shebangs, s6-setuidgid, s6-svwait, s6-svc from a `finish`, container_environment
//! written by a cont-init script) work under `docker run`, `docker exec` reaches the
//! services through s6's commands, and `docker stop` is clean.

use std::time::{Duration, Instant};

use crate::docker::{Container, docker, images};

#[test]
fn an_s6_overlay_image_with_the_overlay_swapped_runs_and_stops_cleanly() {
    let Some(images) = images() else { return };
    let container = Container::new("s6-migration");
    let run = container.start(&[], &images.s6_migration, &[]);
    let running = run.wait_for_line("app: demo-");
    assert!(running.contains("running as nobody"), "{running}");
    run.wait_for_line("sidecar: app is up");

    let status = container.sh("s6-svstat /var/run/s6/services/app");
    assert!(status.starts_with("up (pid "), "s6-svstat: {status}");
    container.sh("s6-svc -h /var/run/s6/services/app");
    run.wait_for_line("app: reloading");
    let instance = container.sh("cat /var/run/s6/container_environment/APP_INSTANCE");
    assert!(running.contains(instance.trim()), "{instance} in {running}");

    let start = Instant::now();
    docker(&["stop", &container.name]);
    let stop_time = start.elapsed();
    let (code, output) = run.finish();
    assert_eq!(code, 0, "docker stop ends the container cleanly\n{output}");
    for line in [
        "app: stopping",
        "taking the sidecar down",
        "[cont-finish] demo-",
    ] {
        assert!(output.contains(line), "{line:?} in\n{output}");
    }
    assert!(
        stop_time < Duration::from_secs(5),
        "docker stop took {stop_time:?}\n{output}"
    );
    println!("docker stop of the s6-overlay image: {stop_time:?}");
}

#[test]
fn its_main_command_waits_for_the_app_with_s6_svwait() {
    let Some(images) = images() else { return };
    let container = Container::new("s6-migration-main");
    let output = container.run(&[], &images.s6_migration, &["/app/main.sh"]);
    let stdout = output.stdout.clone();
    assert_eq!(output.status.code(), Some(0), "{stdout}{}", output.stderr);
    assert!(
        stdout.contains("main: demo-") && stdout.contains(" is up"),
        "{stdout}"
    );
}
