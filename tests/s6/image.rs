//! An image laid out for s6-overlay v2, in the forms real images use, run with pidvisor as
//! PID 1: everything behaves as under s6-overlay.

use crate::harness::{Pidvisor, mkfifo, write_fifo};
use crate::support::{Image, id_of, outcome};

/// Waits until the services' output (pidvisor's stdout) has `needle`.
fn wait_for_output(pidvisor: &mut Pidvisor, needle: &str) {
    pidvisor.wait_until(&format!("the output says {needle:?}"), |p| {
        p.stdout_so_far().contains(needle)
    });
}

/// The layout: a cont-init script that writes a variable into container_environment,
/// services with `with-contenv` shebangs (bash and sh), `s6-setuidgid`, a cron-like
/// service that reloads (`s6-svc -h`) and restarts (`s6-svc -r -wR`) its sibling, a
/// `finish` that takes another sibling down (`s6-svc -d`), and a main command that waits
/// with `s6-svwait` first.
fn s6_overlay_image() -> Image {
    let image = Image::new("s6-image");
    let go = image.path("go.fifo");
    let worker_done = image.path("worker.fifo");
    mkfifo(&go);
    mkfifo(&worker_done);
    image.script(
        "cont-init.d/10-greeting",
        "#!@BIN@/with-contenv sh\n\
         echo \"cont-init sees IMAGE_VAR=$IMAGE_VAR\"\n\
         printf 'hello from cont-init' > \"$PIDVISOR_S6_DIR/container_environment/GREETING\"\n",
    );
    image.script(
        "services.d/greeter/run",
        "#!@BIN@/with-contenv bash\n\
         echo \"greeter sees GREETING=$GREETING IMAGE_VAR=$IMAGE_VAR\"\n\
         exec s6-setuidgid nobody sh -c 'echo \"greeter runs as $(id -u):$(id -g) groups $(id -G)\"; exec sleep 1000'\n",
    );
    image.file("services.d/web/notification-fd", "3\n");
    image.script(
        "services.d/web/run",
        "#!@BIN@/with-contenv sh\n\
         trap 'echo \"web got HUP\"' HUP\n\
         echo \"web started\"\n\
         echo >&3; exec 3>&-\n\
         while :; do sleep 1000 & wait $!; done\n",
    );
    image.script(
        "services.d/cron/run",
        &format!(
            "#!@BIN@/with-contenv sh\n\
             web=\"$PIDVISOR_S6_DIR/services/web\"\n\
             s6-svwait -U \"$web\" || exit 1\n\
             echo \"cron: web is up\"\n\
             s6-svc -h \"$web\"\n\
             read go < {go}\n\
             s6-svc -r -wR -T 20000 \"$web\" && echo \"cron: web restarted\"\n\
             exec sleep 1000\n"
        ),
    );
    image.script(
        "services.d/worker/run",
        &format!(
            "#!@BIN@/with-contenv sh\n\
             echo \"worker started\"\n\
             read line < {worker_done}\n\
             echo \"worker done\"\n"
        ),
    );
    image.script(
        "services.d/worker/finish",
        "#!@BIN@/with-contenv sh\n\
         echo \"worker finish: taking sidecar down\"\n\
         s6-svc -d \"$PIDVISOR_S6_DIR/services/sidecar\"\n",
    );
    image.script("services.d/sidecar/run", "#!/bin/sh\nexec sleep 1000\n");
    image.script(
        "main.sh",
        "#!@BIN@/with-contenv sh\n\
         s6-svwait -u -t 20000 \"$PIDVISOR_S6_DIR/services/web\" \"$PIDVISOR_S6_DIR/services/greeter\"\n\
         echo \"main: services up (s6-svwait exit $?), GREETING=$GREETING\"\n\
         trap 'echo \"main: stopping\"; exit 0' TERM\n\
         while :; do sleep 1000 & wait $!; done\n",
    );
    image
}

#[test]
fn an_s6_overlay_v2_image_runs_unchanged() {
    let image = s6_overlay_image();
    let main = image.path("main.sh");
    let mut pidvisor = image.start(&[("IMAGE_VAR", "from-docker")], &[main.as_str()]);

    // cont-init.d got the container's environment; what it wrote, the services see.
    wait_for_output(&mut pidvisor, "cont-init sees IMAGE_VAR=from-docker");
    wait_for_output(
        &mut pidvisor,
        "greeter sees GREETING=hello from cont-init IMAGE_VAR=from-docker",
    );
    wait_for_output(
        &mut pidvisor,
        "main: services up (s6-svwait exit 0), GREETING=hello from cont-init",
    );
    // s6-setuidgid: uid, gid and supplementary groups of the account.
    let expected = format!(
        "greeter runs as {}:{} groups {}",
        id_of("nobody", "-u"),
        id_of("nobody", "-g"),
        id_of("nobody", "-G")
    );
    wait_for_output(&mut pidvisor, &expected);

    // The cron-like service: s6-svwait -U, s6-svc -h, then s6-svc -r -wR.
    wait_for_output(&mut pidvisor, "cron: web is up");
    wait_for_output(&mut pidvisor, "web got HUP");
    write_fifo(&image.path("go.fifo"));
    wait_for_output(&mut pidvisor, "cron: web restarted");
    assert_eq!(pidvisor.stdout_so_far().matches("web started").count(), 2);

    // A finish that takes its sibling down with s6-svc -d.
    let sidecar = image.s6("services/sidecar");
    let (code, stdout, stderr) = outcome(&image.run("s6-svstat", &[&sidecar]));
    assert!(
        code == 0 && stdout.starts_with("up (pid "),
        "{code} {stdout} {stderr}"
    );
    write_fifo(&image.path("worker.fifo"));
    wait_for_output(&mut pidvisor, "worker finish: taking sidecar down");
    let waited = outcome(&image.run("s6-svwait", &["-D", "-t", "20000", &sidecar]));
    assert_eq!(waited.0, 0, "s6-svwait -D: {waited:?}");
    let (code, stdout, stderr) = outcome(&image.run("s6-svstat", &[&sidecar]));
    assert!(
        code == 0
            && stdout.starts_with("down (signal SIGTERM) ")
            && stdout.contains(", normally up"),
        "{code} {stdout} {stderr}"
    );
    let fields = outcome(&image.run(
        "s6-svstat",
        &["-o", "up,wantedup,pid,exitcode,signal", &sidecar],
    ));
    assert_eq!(fields.1, "false false -1 -1 SIGTERM\n", "{fields:?}");

    // It stops cleanly: the main command's trap, then every service.
    pidvisor.signal(libc::SIGTERM);
    let run = pidvisor.finish(crate::harness::PATIENCE);
    run.assert_code(0);
    assert!(run.stdout.contains("main: stopping"), "{}", run.stdout);
}

#[test]
fn container_environment_is_written_as_s6_writes_it() {
    use std::os::unix::fs::PermissionsExt;
    let image = Image::new("s6-envdir");
    image.script("services.d/idle/run", "#!/bin/sh\nexec sleep 1000\n");
    let mut pidvisor = image.start(&[("MULTI_LINE", "one\ntwo"), ("EMPTY_ONE", "")], &[]);
    let envdir = image.s6("container_environment");
    // The service links are written last: once one is there, the envdir is whole.
    pidvisor.wait_for_file(&image.s6("services/idle"));
    assert_eq!(
        std::fs::read_to_string(format!("{envdir}/MULTI_LINE")).unwrap(),
        "one\ntwo"
    );
    assert_eq!(
        std::fs::read_to_string(format!("{envdir}/EMPTY_ONE")).unwrap(),
        ""
    );
    let mode = |p: &str| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        (mode(&envdir), mode(&format!("{envdir}/MULTI_LINE"))),
        (0o755, 0o644)
    );
    // /var/run/s6/services/NAME resolves to the service's folder.
    let link = std::fs::canonicalize(image.s6("services/idle")).unwrap();
    assert_eq!(
        link,
        std::fs::canonicalize(image.path("services.d/idle")).unwrap()
    );
    // with-contenv sees an empty value as empty, and a value with a newline whole.
    let printed = outcome(&image.run(
        "with-contenv",
        &[
            "sh",
            "-c",
            "printf '%s|%s|' \"$MULTI_LINE\" \"${EMPTY_ONE-unset}\"",
        ],
    ));
    assert_eq!(printed.1, "one\ntwo||", "{printed:?}");
    pidvisor.shut_down();
}

#[test]
fn s6_compatibility_can_be_turned_off() {
    let image = Image::new("s6-off");
    let pidvisor = image.start(&[("PIDVISOR_S6_COMPAT", "0")], &[]);
    let run = image.run("s6-svstat", &["/nowhere/x"]);
    assert_eq!(run.status.code(), Some(1));
    assert!(!std::path::Path::new(&image.s6("container_environment")).exists());
    let with = outcome(&image.run("with-contenv", &["true"]));
    assert_eq!(with.0, 111, "{with:?}");
    pidvisor.shut_down();
}

#[test]
fn s6_variables_are_honoured_where_pidvisor_has_none_set() {
    // S6_BEHAVIOUR_IF_STAGE2_FAILS=0: a failing cont-init script does not stop the
    // container; S6_CMD_WAIT_FOR_SERVICES=1 with a maxtime: the main command starts
    // after that even though a service never becomes ready.
    let image = Image::new("s6-vars");
    image.script("cont-init.d/01-fails", "#!/bin/sh\nexit 3\n");
    image.file("services.d/never-ready/notification-fd", "3\n");
    image.script("services.d/never-ready/run", "#!/bin/sh\nexec sleep 1000\n");
    let env = [
        ("S6_BEHAVIOUR_IF_STAGE2_FAILS", "0"),
        ("S6_CMD_WAIT_FOR_SERVICES", "1"),
        ("S6_CMD_WAIT_FOR_SERVICES_MAXTIME", "300"),
        ("S6_KILL_GRACETIME", "200"),
    ];
    let run = image
        .launch(&env, &["sh", "-c", "echo main ran; exit 7"])
        .run();
    run.assert_code(7);
    assert!(run.stdout.contains("main ran"), "{}", run.stdout);
    assert!(run.stderr.contains("going on"), "{}", run.stderr);
    assert!(
        run.stderr.contains("not all ready after 300ms"),
        "{}",
        run.stderr
    );
    // The same image with S6_BEHAVIOUR_IF_STAGE2_FAILS=2: the failure stops it.
    let run = image
        .launch(
            &[("S6_BEHAVIOUR_IF_STAGE2_FAILS", "2")],
            &["sh", "-c", "echo main ran"],
        )
        .run();
    run.assert_code(3);
    assert!(!run.stdout.contains("main ran"), "{}", run.stdout);
}

#[test]
fn a_finish_that_calls_s6_svscanctl_stops_the_container_with_its_exit_code() {
    // The s6-overlay v2 way for a service to end the container: its finish leaves the
    // exit code in env-stage3 and asks s6-svscan to terminate. S6_SERVICES_GRACETIME
    // bounds the stop of a service that ignores SIGTERM (and has no service.toml).
    let image = Image::new("s6-svscanctl");
    let fifo = image.path("app.fifo");
    mkfifo(&fifo);
    image.script(
        "services.d/app/run",
        &format!("#!/bin/sh\nread line < {fifo}\nexit 5\n"),
    );
    image.script(
        "services.d/app/finish",
        "#!@BIN@/with-contenv sh\n\
         echo \"$1\" > \"$PIDVISOR_S6_DIR/env-stage3/S6_STAGE2_EXITED\"\n\
         exec s6-svscanctl -t \"$PIDVISOR_S6_DIR/services\"\n",
    );
    image.script(
        "services.d/stubborn/run",
        "#!/bin/sh\ntrap '' TERM\necho stubborn started\nexec sleep 1000\n",
    );
    let mut pidvisor = image
        .launch(&[("S6_SERVICES_GRACETIME", "300")], &[])
        .start();
    wait_for_output(&mut pidvisor, "stubborn started");
    write_fifo(&fifo);
    let run = pidvisor.finish(crate::harness::PATIENCE);
    run.assert_code(5);
    assert!(
        run.stderr
            .contains("stubborn: still running 300ms after SIGTERM: sending SIGKILL"),
        "{}",
        run.stderr
    );
}

#[test]
fn s6_envuidgid_sets_the_account_s_ids_and_main_wait_0_does_not_wait() {
    // S6_CMD_WAIT_FOR_SERVICES=0 (s6-overlay v2's default): the main command starts while
    // a service is still not ready, and nothing warns about it.
    let image = Image::new("s6-envuidgid");
    image.file("services.d/slow/notification-fd", "3\n");
    image.script("services.d/slow/run", "#!/bin/sh\nexec sleep 1000\n");
    let run = image
        .launch(
            &[("S6_CMD_WAIT_FOR_SERVICES", "0")],
            &[
                "s6-envuidgid",
                "nobody",
                "sh",
                "-c",
                "echo \"ids $UID $GID [$GIDLIST]\"",
            ],
        )
        .run();
    run.assert_code(0);
    let gid = id_of("nobody", "-g");
    let others: Vec<String> = id_of("nobody", "-G")
        .split_whitespace()
        .filter(|g| *g != gid)
        .map(str::to_owned)
        .collect();
    let expected = format!("ids {} {gid} [{}]", id_of("nobody", "-u"), others.join(","));
    assert!(run.stdout.contains(&expected), "{expected}\n{}", run.stdout);
    assert!(!run.stderr.contains("not all ready"), "{}", run.stderr);
}

#[test]
fn a_lone_main_command_under_with_contenv_finds_the_container_environment() {
    // No service, no init script: the main command starts at once, and with-contenv is
    // installed (bin/ is on the PATH), so the folder is written before it starts.
    let image = Image::new("s6-lone-main");
    let run = image.run_main_alone(
        &[("GREETING", "hello")],
        &["with-contenv", "sh", "-c", "printf '%s' \"$GREETING\""],
    );
    run.assert_code(0);
    assert_eq!(run.stdout, "hello", "{run}");
}

#[test]
fn a_lone_main_command_without_with_contenv_gets_no_runtime_folder() {
    // Nothing could read the folder: no service, no init script, no with-contenv on the
    // PATH. The main command checks that it was not written.
    let image = Image::new("s6-lone-main-plain");
    let run = image.run_main_alone(
        &[("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")],
        &[
            "sh",
            "-c",
            "test ! -e \"$PIDVISOR_S6_DIR/container_environment\"",
        ],
    );
    run.assert_code(0);
    assert!(!std::path::Path::new(&image.s6("container_environment")).exists());
}
