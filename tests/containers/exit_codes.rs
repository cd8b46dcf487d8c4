//! Exit codes through `docker run`: the main command's code is the container's, a death
//! by signal N gives 128+N, a missing command 127; the same under `docker run --init`,
//! where Docker's tini is PID 1 and pidvisor says that it became a subreaper.

use crate::docker::{Container, images};

const CASES: [(&str, &[&str], i32); 5] = [
    ("exit 0", &["sh", "-c", "exit 0"], 0),
    ("exit 3", &["sh", "-c", "exit 3"], 3),
    ("SIGKILL", &["sh", "-c", "kill -KILL $$"], 137),
    ("SIGTERM", &["sh", "-c", "kill -TERM $$"], 143),
    ("missing command", &["no-such-command"], 127),
];

#[test]
fn docker_run_exits_with_the_main_commands_code() {
    check_exit_codes(&[]);
}

#[test]
fn docker_run_init_exits_with_the_main_commands_code() {
    check_exit_codes(&["--init"]);
}

fn check_exit_codes(options: &[&str]) {
    let Some(images) = images() else { return };
    for (what, command, expected) in CASES {
        let container = Container::new("exit");
        let mut all = vec!["--tmpfs", "/etc/services.d"];
        all.extend(options);
        let run = container.run(&all, &images.example, command);
        let log = format!("stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
        assert_eq!(
            run.status.code(),
            Some(expected),
            "{what} with docker run {options:?}\n{log}"
        );
        if expected == 127 {
            assert!(
                run.stderr
                    .contains("cannot run 'no-such-command': No such file or directory"),
                "the missing command is named\n{log}"
            );
        }
        let subreaper = run.stderr.contains("registered as child subreaper");
        assert_eq!(
            subreaper,
            options.contains(&"--init"),
            "pidvisor is a subreaper exactly when it is not PID 1\n{log}"
        );
    }
}
