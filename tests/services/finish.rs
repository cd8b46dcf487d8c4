//! `finish`: run after every exit of `run` with s6's two arguments (the exit code, 256 when
//! killed by a signal; then the signal number, 0 if none); exiting 125 keeps the service
//! down; a `finish` that outlives `finish-timeout` is killed and the policy goes on; its
//! output is prefixed like `run`'s.

use crate::layout::Layout;

#[test]
fn finish_gets_the_exit_code_or_256_and_the_signal_and_125_keeps_the_service_down() {
    let layout = Layout::new("finish-args");
    let runs = layout.quoted("runs");
    let args = layout.quoted("finish.args");
    layout.service_with(
        "ender",
        &format!(
            "echo run >> {runs}\n\
             case $(wc -l < {runs}) in\n\
               1) exit 3 ;;\n\
               2) kill -KILL $$ ;;\n\
               *) kill -TERM $$ ;;\n\
             esac\n\
             exit 99"
        ),
        "restart-delay = \"10ms\"\n",
    );
    layout.write(
        "ender",
        "finish",
        &format!(
            "#!/bin/sh\necho \"$# $1 $2 $PIDVISOR_SERVICE\" >> {args}\n\
             [ \"$(wc -l < {args})\" -ge 3 ] && exit 125\nexit 0\n"
        ),
        0o755,
    );
    let mut pidvisor = layout.start();
    pidvisor.wait_for_log("ender: not restarted (finish exited 125)");
    let run = pidvisor.shut_down();
    assert_eq!(
        layout.lines("finish.args"),
        ["2 3 0 ender", "2 256 9 ender", "2 256 15 ender"],
        "{run}"
    );
    assert_eq!(layout.lines("runs").len(), 3, "{run}");
}

#[test]
fn a_finish_that_outlives_its_timeout_is_killed_and_the_service_restarts() {
    let layout = Layout::new("finish-timeout");
    let runs = layout.quoted("runs");
    layout.service_with(
        "slowfinish",
        &format!(
            "echo run >> {runs}\n\
             if [ \"$(wc -l < {runs})\" -ge 2 ]; then exec sleep 1000; fi\nexit 1"
        ),
        "restart-delay = \"10ms\"\nfinish-timeout = \"300ms\"\n",
    );
    layout.write(
        "slowfinish",
        "finish",
        "#!/bin/sh\nexec sleep 1000\n",
        0o755,
    );
    let mut pidvisor = layout.start();
    layout.wait_for_lines(&mut pidvisor, "runs", 2);
    let run = pidvisor.shut_down();
    assert!(
        run.stderr
            .contains("slowfinish: finish still running after 300ms: killing it"),
        "{run}"
    );
}

#[test]
fn finish_output_gets_the_service_prefix_like_runs() {
    let layout = Layout::new("finish-prefix");
    layout.service_with("tidy", "echo running\nexit 0", "restart = \"never\"\n");
    layout.write(
        "tidy",
        "finish",
        "#!/bin/sh\necho \"finish out $1\"\necho 'finish err' >&2\n",
        0o755,
    );
    let mut pidvisor = layout.start();
    pidvisor.wait_for_log("tidy: not restarted (restart policy)");
    let run = pidvisor.shut_down();
    assert_eq!(run.stdout, "tidy | running\ntidy | finish out 0\n", "{run}");
    assert!(
        run.stderr.lines().any(|line| line == "tidy | finish err"),
        "{run}"
    );
}
