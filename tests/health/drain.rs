//! `--shutdown-delay`: on SIGTERM, unhealthy first (health and ping say draining, an
//! event is written) while everything keeps running; then the shutdown as usual. A second
//! SIGTERM, or the main command's exit, skips the wait.

use std::fs;

use crate::harness::{Launch, PATIENCE, TempDir, sh_quote};
use crate::support::{ctl, events_file, read_events, service, socket, wait_for_event};

/// A service that writes `term-received` in the temp dir when it gets SIGTERM.
fn term_recorder(dir: &TempDir) {
    let mark = sh_quote(&dir.file("term-received"));
    service(
        dir,
        "web",
        &format!("trap 'touch {mark}; exit 0' TERM\nwhile :; do sleep 1 & wait $!; done"),
        "",
    );
}

fn launch(dir: &TempDir, delay: &str, command: &[&str]) -> Launch {
    fs::create_dir_all(dir.path().join("services.d")).expect("services.d");
    let services = dir.file("services.d");
    let mut args = vec![
        "--services-dir",
        services.as_str(),
        "--shutdown-delay",
        delay,
    ];
    args.extend_from_slice(command);
    Launch::pid1(dir, &args)
        .env("PIDVISOR_EVENTS_FILE", &events_file(dir))
        .env("PIDVISOR_SOCKET", &socket(dir))
}

fn event_time(dir: &TempDir, kind: &str) -> f64 {
    read_events(dir)
        .iter()
        .find(|e| e["event"] == kind)
        .and_then(|e| e["mono"].as_f64())
        .unwrap_or_else(|| panic!("no {kind} event"))
}

#[test]
fn sigterm_drains_unhealthy_first_and_a_second_sigterm_skips_the_wait() {
    let dir = TempDir::new("drain-second");
    term_recorder(&dir);
    let mut pidvisor = launch(&dir, "1h", &[]).start();
    wait_for_event(&dir, "web is ready", |e| e["event"] == "ready");
    ctl(&dir, &["health"]).expect(0);

    pidvisor.signal(libc::SIGTERM);
    wait_for_event(&dir, "draining", |e| {
        e["event"] == "draining" && e["signal"] == "SIGTERM" && e["delay"] == 3600.0
    });
    let health = ctl(&dir, &["health"]).expect(1);
    assert!(
        health
            .stdout
            .starts_with("pidvisor: draining before the stop"),
        "{health:?}"
    );
    let ping = ctl(&dir, &["ping"]).expect(0);
    assert_eq!(ping.stdout.trim(), "pidvisor: draining", "{ping:?}");
    pidvisor.wait_for_log("draining for 3600s before shutting down");
    // Still serving: the service has not been asked to stop.
    assert!(!dir.path().join("term-received").exists());
    assert!(read_events(&dir).iter().all(|e| e["event"] != "shutdown"));

    pidvisor.signal(libc::SIGTERM);
    let run = pidvisor.finish(PATIENCE);
    run.assert_code(0);
    assert!(dir.path().join("term-received").exists(), "{run}");
    assert!(
        run.stderr
            .contains("SIGTERM while draining: shutting down now"),
        "{run}"
    );
}

#[test]
fn the_shutdown_begins_by_itself_once_the_delay_is_over() {
    let dir = TempDir::new("drain-delay");
    term_recorder(&dir);
    let pidvisor = launch(&dir, "700ms", &[]).start();
    wait_for_event(&dir, "web is ready", |e| e["event"] == "ready");
    pidvisor.signal(libc::SIGTERM);
    let run = pidvisor.finish(PATIENCE);
    run.assert_code(0);
    assert!(dir.path().join("term-received").exists(), "{run}");
    let waited = event_time(&dir, "shutdown") - event_time(&dir, "draining");
    // The times are rounded to the microsecond.
    assert!(waited >= 0.7 - 1e-6, "shutdown {waited}s after draining");
}

#[test]
fn the_main_commands_exit_ends_the_drain_at_once() {
    let dir = TempDir::new("drain-main");
    term_recorder(&dir);
    let script = "trap 'echo got-term > main-term' TERM\nread line < fifo\nexit 3";
    let fifo = dir.file("fifo");
    crate::harness::mkfifo(&fifo);
    let mut pidvisor = launch(&dir, "1h", &["sh", "-c", script]).start();
    wait_for_event(&dir, "web is ready", |e| e["event"] == "ready");
    pidvisor.main_pid();
    pidvisor.signal(libc::SIGTERM);
    wait_for_event(&dir, "draining", |e| e["event"] == "draining");
    // The main command has not been asked to stop either.
    assert!(!dir.path().join("main-term").exists());
    crate::harness::write_fifo(&fifo);
    let run = pidvisor.finish(PATIENCE);
    run.assert_code(3);
}
