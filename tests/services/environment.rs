//! What a service runs with: the container's environment passed through (plus
//! `PIDVISOR_SERVICE` and its `env` table, for `run`, `finish` and the readiness command
//! alike), its folder as working directory, its `umask`, the `user` it names; and,
//! without a main command, the signals pidvisor gets (other than the shutdown ones)
//! reach every service.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::layout::{Layout, log_count};

/// Prints the variables a service should see, one `name=value` a line.
const PRINT_ENV: &str = "printf '%s\\n' \"greeting=$CONTAINER_GREETING\" \
                         \"service=$PIDVISOR_SERVICE\" \"toml=$FROM_TOML\" \
                         \"override=$OVERRIDDEN\" \"cwd=$(pwd)\"";

#[test]
fn the_containers_environment_reaches_run_finish_and_the_readiness_command() {
    let layout = Layout::new("environment");
    let toml = "env = { FROM_TOML = \"toml value\", OVERRIDDEN = \"by the toml\" }\n\
                ready = { command = \"test \\\"$FROM_TOML\\\" = 'toml value' && \
                test \\\"$CONTAINER_GREETING\\\" = 'hello, container'\" }\n\
                ready-timeout = \"10s\"\numask = \"027\"\n";
    layout.service_with(
        "envy",
        &format!(
            "{PRINT_ENV} > {}\nexec sleep 1000",
            layout.quoted("run.env")
        ),
        toml,
    );
    layout.write(
        "envy",
        "finish",
        &format!("#!/bin/sh\n{PRINT_ENV} > {}\n", layout.quoted("finish.env")),
        0o755,
    );
    let mut pidvisor = layout
        .launch(&[])
        .env("CONTAINER_GREETING", "hello, container")
        .env("OVERRIDDEN", "by the container")
        .start();
    pidvisor.wait_for_log("envy: ready");
    layout.wait_for_lines(&mut pidvisor, "run.env", 5);
    let run = pidvisor.shut_down();
    let folder = layout.path("services.d/envy");
    let expected = [
        "greeting=hello, container".to_owned(),
        "service=envy".to_owned(),
        "toml=toml value".to_owned(),
        "override=by the toml".to_owned(),
        format!("cwd={folder}"),
    ];
    assert_eq!(layout.lines("run.env"), expected, "{run}");
    assert_eq!(layout.lines("finish.env"), expected, "{run}");
    // Both files were created under the umask of service.toml.
    for file in ["run.env", "finish.env"] {
        let mode = std::fs::metadata(layout.path(file))
            .expect("stat")
            .permissions();
        assert_eq!(mode.mode() & 0o777, 0o640, "{file}");
    }
}

#[test]
fn a_service_with_a_user_runs_as_that_user() {
    let layout = Layout::new("user");
    // Its output goes through pidvisor: nobody cannot write to the test's temp dir.
    layout.service_with(
        "who",
        "id\necho \"HOME=$HOME USER=$USER LOGNAME=$LOGNAME\"\nexec sleep 1000",
        "user = \"nobody\"\n",
    );
    let mut pidvisor = layout.start();
    pidvisor.wait_until("the service has printed who it is", |p| {
        p.stdout_so_far().contains("who | HOME=")
    });
    let run = pidvisor.shut_down();
    let id = Command::new("id")
        .arg("nobody")
        .output()
        .expect("id nobody");
    let id = String::from_utf8_lossy(&id.stdout);
    let home = std::fs::read_to_string("/etc/passwd")
        .expect("/etc/passwd")
        .lines()
        .find_map(|l| l.strip_prefix("nobody:"))
        .and_then(|l| l.split(':').nth(4))
        .expect("nobody's home in /etc/passwd")
        .to_owned();
    assert_eq!(
        run.stdout,
        format!("who | {id}who | HOME={home} USER=nobody LOGNAME=nobody\n"),
        "{run}"
    );
}

#[test]
fn without_a_main_command_hup_and_usr1_reach_every_running_service_but_not_its_logger() {
    let layout = Layout::new("signals");
    let events = layout.quoted("events");
    let names = ["one", "two"];
    for name in names {
        // Ready once its handlers are set; `wait` returns to let a handler run.
        layout.service_with(
            name,
            &format!(
                "trap 'echo \"$PIDVISOR_SERVICE HUP\" >> {events}' HUP\n\
                 trap 'echo \"$PIDVISOR_SERVICE USR1\" >> {events}' USR1\n\
                 echo >&3\n\
                 while :; do sleep 1000 & wait; done"
            ),
            "ready = { notify-fd = 3 }\n",
        );
    }
    // A logger with the default handling of HUP: a HUP would kill it.
    layout.write("one", "log/run", "#!/bin/sh\nexec cat > /dev/null\n", 0o755);
    let mut pidvisor = layout.start();
    for name in names {
        pidvisor.wait_for_log(&format!("{name}: ready"));
    }
    pidvisor.signal(libc::SIGHUP);
    layout.wait_for_lines(&mut pidvisor, "events", 2);
    pidvisor.signal(libc::SIGUSR1);
    layout.wait_for_lines(&mut pidvisor, "events", 4);
    let run = pidvisor.shut_down();
    let mut events = layout.lines("events");
    events[..2].sort();
    events[2..].sort();
    assert_eq!(
        events,
        ["one HUP", "two HUP", "one USR1", "two USR1"],
        "{run}"
    );
    for name in ["one", "two", "one/log"] {
        assert_eq!(
            log_count(&run.stderr, &format!("{name}: started")),
            1,
            "{run}"
        );
    }
    let logger_signalled = run
        .log_lines()
        .into_iter()
        .any(|line| line.contains("one/log: ") && line.contains("SIG"));
    assert!(!logger_signalled, "the logger got a signal\n{run}");
}
