//! A restricted container, as documented in the README ("In a container"):
//!
//! - `--read-only`: pidvisor runs, without its control socket (it says why); with
//!   `--tmpfs /run` pidvisorctl works too.
//! - `--user 1000:1000`: pidvisor runs as that user, without its control socket unless
//!   /run/pidvisor can be made (a tmpfs owned by the user); a service with `user =` in
//!   its service.toml cannot be started (switching users needs root) and says so.

use crate::docker::{Container, docker, fixture, images};

#[test]
fn read_only_root_runs_without_the_control_socket() {
    let Some(images) = images() else { return };
    let options = ["--read-only", "--tmpfs", "/etc/services.d"];
    let run = Container::new("ro").run(&options, &images.example, &["sh", "-c", "exit 5"]);
    assert_eq!(run.status.code(), Some(5), "stderr:\n{}", run.stderr);
    assert!(
        run.stderr.contains(
            "no control socket, pidvisorctl will not work: creating /run/pidvisor: \
             Read-only file system"
        ),
        "pidvisor says why it has no control socket\nstderr:\n{}",
        run.stderr
    );
}

#[test]
fn read_only_root_with_a_tmpfs_on_run_has_pidvisorctl_and_signals() {
    let Some(images) = images() else { return };
    let container = Container::new("ro-run");
    let services = format!("{}:/etc/services.d:ro", fixture("signals.d"));
    let options = ["--read-only", "--tmpfs", "/run", "-v", &services];
    let run = container.start(&options, &images.example, &[]);
    run.wait_for_line("one | ready");
    run.wait_for_line("two | ready");
    let status = container.sh("pidvisorctl status");
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("one ") && l.contains("ready")),
        "pidvisorctl status lists the services:\n{status}"
    );
    docker(&["stop", &container.name]);
    let (code, output) = run.finish();
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("one | got TERM"), "{output}");
    assert!(
        !output.contains("control socket, pidvisorctl will not"),
        "{output}"
    );
}

#[test]
fn non_root_user_runs_the_main_command_as_that_user() {
    let Some(images) = images() else { return };
    let options = ["--user", "1000:1000", "--tmpfs", "/etc/services.d"];
    let command = ["sh", "-c", "id -u; id -g; exit 6"];
    let run = Container::new("user").run(&options, &images.example, &command);
    assert_eq!(run.status.code(), Some(6), "stderr:\n{}", run.stderr);
    assert_eq!(run.stdout, "1000\n1000\n", "stderr:\n{}", run.stderr);
    assert!(
        run.stderr.contains(
            "no control socket, pidvisorctl will not work: creating /run/pidvisor: \
             Permission denied"
        ),
        "pidvisor says why it has no control socket\nstderr:\n{}",
        run.stderr
    );
}

#[test]
fn non_root_user_with_its_own_tmpfs_on_run_has_pidvisorctl() {
    let Some(images) = images() else { return };
    let options = [
        "--user",
        "1000:1000",
        "--tmpfs",
        "/run:uid=1000,gid=1000",
        "--tmpfs",
        "/etc/services.d",
    ];
    let command = ["sh", "-c", "pidvisorctl status && exit 7"];
    let run = Container::new("user-run").run(&options, &images.example, &command);
    assert_eq!(run.status.code(), Some(7), "stderr:\n{}", run.stderr);
    assert!(
        run.stdout.contains("no services"),
        "stdout:\n{}",
        run.stdout
    );
}

#[test]
fn non_root_user_cannot_start_a_service_that_switches_users() {
    let Some(images) = images() else { return };
    let container = Container::new("user-switch");
    let services = format!("{}:/etc/services.d:ro", fixture("asuser.d"));
    let options = ["--user", "1000:1000", "-v", &services];
    let run = container.start(&options, &images.example, &[]);
    run.wait_for_line(
        "asuser/service.toml: user: pidvisor runs as uid 1000 gid 1000, not root, so it cannot run this service",
    );
    docker(&["stop", &container.name]);
    let (code, output) = run.finish();
    assert_eq!(code, 0, "{output}");
}
