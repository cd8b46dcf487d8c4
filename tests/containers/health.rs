//! `HEALTHCHECK CMD pidvisorctl health` (Dockerfile.example's): Docker's view of the
//! container follows its services. A service whose liveness check fails is restarted and
//! is not ready until its check passes again, so `docker inspect`'s health status turns
//! `unhealthy`, then `healthy` again once the service recovers. The status changes are
//! read from `docker events` as they happen.

use std::process::Command;

use crate::docker::{Attached, Container, docker, fixture, images};

#[test]
fn docker_health_follows_the_services_through_pidvisorctl_health() {
    let Some(images) = images() else { return };
    let container = Container::new("health");
    let services = format!("{}:/etc/services.d:ro", fixture("health.d"));
    // The image's HEALTHCHECK, asked every second and believed at the first answer.
    let options = [
        "-d",
        "-v",
        &services,
        "--health-interval",
        "1s",
        "--health-retries",
        "1",
    ];
    let events = Attached::spawn(Command::new("docker").args([
        "events",
        "--filter",
        &format!("container={}", container.name),
        "--filter",
        "event=health_status",
        "--format",
        "{{.Status}}",
    ]));
    let started = container.run(&options, &images.example, &[]);
    assert_eq!(
        started.status.code(),
        Some(0),
        "docker run -d: {}",
        started.stderr
    );

    events.wait_for_line("health_status: healthy");
    container.sh("touch /tmp/sick");
    events.wait_for_line("health_status: unhealthy");
    container.sh("rm /tmp/sick");
    events.wait_for_lines("health_status: healthy", 2);

    let status = docker(&[
        "inspect",
        "--format",
        "{{.State.Health.Status}}",
        &container.name,
    ]);
    assert_eq!(status.trim(), "healthy");
    docker(&["stop", &container.name]);
    let code = docker(&[
        "inspect",
        "--format",
        "{{.State.ExitCode}}",
        &container.name,
    ]);
    assert_eq!(code.trim(), "0", "docker stop ends the container cleanly");
}
