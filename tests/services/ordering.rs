//! The container's stages in order: `cont-init.d` in name order (a failure stops the
//! container), services started after the ones they come `after` are ready and stopped
//! in reverse order, then `cont-finish.d` in name order; `down` services stay down.
//!
//! Every script appends one line to a shared `order` file; each service writes its line
//! before it reports ready on fd 3, and on SIGTERM before it exits, so the file order is
//! the order pidvisor drove them in.

use crate::harness::sh_quote;
use crate::layout::{Layout, log_count};

/// A service that logs `start NAME` and `stop NAME` to the `order` file and says ready on
/// fd 3 (its toml adds `after`).
fn ordered_service(layout: &Layout, name: &str, after: &[&str]) {
    let order = layout.quoted("order");
    let body = format!(
        "trap 'echo \"stop $PIDVISOR_SERVICE\" >> {order}; exit 0' TERM\n\
         echo \"start $PIDVISOR_SERVICE\" >> {order}\n\
         echo >&3\n\
         sleep 1000 & wait"
    );
    let after: Vec<String> = after.iter().map(|a| format!("\"{a}\"")).collect();
    let toml = format!(
        "ready = {{ notify-fd = 3 }}\nafter = [{}]\n",
        after.join(", ")
    );
    layout.service_with(name, &body, &toml);
}

/// A cont-init.d or cont-finish.d script that logs `WHAT NAME` and exits with `code`.
fn ordered_script(layout: &Layout, folder: &str, what: &str, name: &str, code: i32) {
    let line = sh_quote(&format!("{what} {name}"));
    let body = format!("echo {line} >> {}\nexit {code}", layout.quoted("order"));
    layout.script_in(folder, name, &body);
}

#[test]
fn init_then_start_in_dependency_order_then_stop_in_reverse_then_finish_scripts() {
    let layout = Layout::new("order");
    // Alphabetical order is not the dependency order.
    ordered_service(&layout, "mid", &["alpha"]);
    ordered_service(&layout, "alpha", &["zeta"]);
    ordered_service(&layout, "zeta", &[]);
    // Created in reverse; byte order, not numeric order.
    for name in ["b-second", "a-first"] {
        ordered_script(&layout, "cont-init.d", "init", name, 0);
    }
    for name in ["9-third", "10-second", "05-first"] {
        ordered_script(&layout, "cont-finish.d", "finish", name, 0);
    }
    let mut pidvisor = layout.start();
    layout.wait_for_lines(&mut pidvisor, "order", 5);
    let run = pidvisor.shut_down();
    assert_eq!(
        layout.lines("order"),
        [
            "init a-first",
            "init b-second",
            "start zeta",
            "start alpha",
            "start mid",
            "stop mid",
            "stop alpha",
            "stop zeta",
            "finish 05-first",
            "finish 10-second",
            "finish 9-third",
        ],
        "{run}"
    );
}

#[test]
fn a_failing_init_script_stops_the_container_with_its_code_before_anything_starts() {
    let layout = Layout::new("init-fails");
    ordered_script(&layout, "cont-init.d", "init", "10-ok", 0);
    ordered_script(&layout, "cont-init.d", "init", "20-fail", 3);
    ordered_script(&layout, "cont-init.d", "init", "30-later", 0);
    ordered_service(&layout, "svc", &[]);
    let main_ran = layout.path("main.ran");
    let run = layout.launch(&["touch", &main_ran]).run();
    run.assert_code(3);
    assert_eq!(
        layout.lines("order"),
        ["init 10-ok", "init 20-fail"],
        "{run}"
    );
    let script = layout.path("cont-init.d/20-fail");
    let message = format!(
        "pidvisor: ERROR {script} failed (exit code 3): stopping the container (fix the \
         script, or set PIDVISOR_INIT_CONTINUE_ON_ERROR=1 to start the services anyway)"
    );
    assert!(run.stderr.contains(&message), "{run}");
    assert!(!std::path::Path::new(&main_ran).exists(), "{run}");
    assert_eq!(log_count(&run.stderr, "svc: started"), 0, "{run}");
}

#[test]
fn init_continue_on_error_starts_the_services_anyway() {
    let layout = Layout::new("init-continue");
    ordered_script(&layout, "cont-init.d", "init", "10-fail", 3);
    ordered_script(&layout, "cont-init.d", "init", "20-later", 0);
    ordered_service(&layout, "svc", &[]);
    let run = layout
        .launch(&["true"])
        .env("PIDVISOR_INIT_CONTINUE_ON_ERROR", "1")
        .run();
    run.assert_code(0);
    assert_eq!(
        layout.lines("order"),
        ["init 10-fail", "init 20-later", "start svc", "stop svc"],
        "{run}"
    );
    assert!(
        run.stderr.contains("going on (init-continue-on-error)"),
        "{run}"
    );
}

#[test]
fn a_service_with_a_down_file_is_not_started_at_boot() {
    let layout = Layout::new("down");
    let marker = layout.quoted("sleeper.ran");
    layout.service("sleeper", &format!("touch {marker}\nexec sleep 1000"));
    layout.write("sleeper", "down", "", 0o644);
    ordered_service(&layout, "awake", &[]);
    // The main command starts once the services wanted at boot are ready.
    let run = layout.launch(&["true"]).run();
    run.assert_code(0);
    assert_eq!(
        layout.lines("order"),
        ["start awake", "stop awake"],
        "{run}"
    );
    assert_eq!(log_count(&run.stderr, "sleeper: started"), 0, "{run}");
    assert!(layout.lines("sleeper.ran").is_empty(), "{run}");
    assert!(run.stderr.contains("2 services: "), "{run}");
}

#[test]
fn the_main_command_does_not_wait_for_services_that_wait_on_a_down_or_failed_one() {
    let layout = Layout::new("blocked-dependents");
    layout.service("sleeper", "exec sleep 1000");
    layout.write("sleeper", "down", "", 0o644);
    layout.service_with("dreamer", "exec sleep 1000", "after = [\"sleeper\"]\n");
    // Never ready, since it never says so: fails before its dependent could start.
    let give_up_at_once = "restart-delay = \"10ms\"\nmax-restarts = 1\nready = { notify-fd = 3 }\n";
    layout.service_with("broken", "exit 1", give_up_at_once);
    layout.service_with("stranded", "exec sleep 1000", "after = [\"broken\"]\n");
    let main_ran = layout.path("main.ran");
    let run = layout.launch(&["touch", &main_ran]).run();
    run.assert_code(0);
    assert!(std::path::Path::new(&main_ran).exists(), "{run}");
    assert!(run.stderr.contains("broken: FAILED"), "{run}");
    for never_started in ["sleeper", "dreamer", "stranded"] {
        let started = format!("{never_started}: started");
        assert_eq!(log_count(&run.stderr, &started), 0, "{run}");
    }
}

#[test]
fn a_service_that_ends_during_shutdown_is_not_restarted() {
    let layout = Layout::new("no-restart-at-shutdown");
    let pid_file = layout.quoted("base.pid");
    // A stable run restarts at once (stable-after = 0), were it still wanted.
    layout.service_with(
        "base",
        &format!("echo $$ > {pid_file}\nexec sleep 1000"),
        "stable-after = \"0s\"\n",
    );
    // Stopping, it ends the base and waits until pidvisor has reaped it.
    layout.service_with(
        "top",
        &format!(
            "trap 'kill $(cat {pid_file}); while kill -0 $(cat {pid_file}) 2>/dev/null; do \
             sleep 0.01; done; exit 0' TERM\necho >&3\nsleep 1000 & wait"
        ),
        "after = [\"base\"]\nready = { notify-fd = 3 }\n",
    );
    let mut pidvisor = layout.start();
    pidvisor.wait_for_log("top: ready");
    let run = pidvisor.shut_down();
    assert!(run.stderr.contains("base: killed by SIGTERM"), "{run}");
    assert_eq!(log_count(&run.stderr, "base: started"), 1, "{run}");
}

#[test]
fn a_service_after_a_one_shot_starts_once_the_one_shot_has_finished_successfully() {
    let layout = Layout::new("after-one-shot");
    let order = layout.quoted("order");
    // s6-rc's oneshot: a `restart = "never"` service that exits 0 counts as up.
    layout.service_with(
        "setup",
        &format!("echo setup >> {order}"),
        "restart = \"never\"\n",
    );
    layout.service_with(
        "app",
        &format!("echo app >> {order}\nexec sleep 1000"),
        "after = [\"setup\"]\n",
    );
    let main_ran = layout.path("main.ran");
    let mut pidvisor = layout
        .launch(&["sh", "-c", &format!("touch {main_ran}; exec sleep 1000")])
        .start();
    pidvisor.wait_for_file(&main_ran);
    // `app` has no readiness check: it counts as up once spawned, so it may not have
    // written its line yet.
    layout.wait_for_lines(&mut pidvisor, "order", 2);
    pidvisor.signal(libc::SIGTERM);
    let run = pidvisor.finish(crate::harness::PATIENCE);
    assert_eq!(layout.lines("order"), ["setup", "app"], "{run}");
    assert_eq!(log_count(&run.stderr, "app: started"), 1, "{run}");
}

#[test]
fn a_service_after_a_failed_one_shot_stays_down_and_the_log_says_why() {
    let layout = Layout::new("after-failed-one-shot");
    layout.service_with("setup", "exit 3", "restart = \"never\"\n");
    let app_ran = layout.quoted("app.ran");
    layout.service_with(
        "app",
        &format!("touch {app_ran}\nexec sleep 1000"),
        "after = [\"setup\"]\n",
    );
    // The main command does not wait for a service that cannot start.
    let main_ran = layout.path("main.ran");
    let run = layout.launch(&["touch", &main_ran]).run();
    run.assert_code(0);
    assert!(std::path::Path::new(&main_ran).exists(), "{run}");
    assert!(layout.lines("app.ran").is_empty(), "{run}");
    assert_eq!(log_count(&run.stderr, "app: started"), 0, "{run}");
    assert!(
        run.stderr.contains(
            "pidvisor: WARN app: not started: it comes after setup, which finished with exit code 3"
        ),
        "{run}"
    );
}
