//! Broken services never take the others down: a `run` that is missing, not executable,
//! has a bad shebang, exits at once, or floods its output gets a clear log line and its
//! policy, while a healthy service keeps running (one run, still answering) and so does
//! pidvisor.

use std::io::Write;

use crate::harness::{PATIENCE, heavy, mkfifo};
use crate::layout::{Layout, fifo_writer, log_count};

#[test]
fn broken_services_get_a_clear_log_line_and_the_others_keep_running() {
    let _heavy = heavy();
    let layout = Layout::new("isolation");
    let dir = layout.path("services.d");
    layout.write("missing", "service.toml", "", 0o644);
    layout.service_with("waiter", "exec sleep 1000", "after = [\"missing\"]\n");
    layout.write("noexec", "run", "#!/bin/sh\nexec sleep 1000\n", 0o644);
    let give_up_soon = "restart-delay = \"10ms\"\nmax-restarts = 2\n";
    layout.write("shebang", "run", "#!/nonexistent/interpreter\n", 0o755);
    layout.write("shebang", "service.toml", give_up_soon, 0o644);
    layout.service_with("quitter", "exit 1", give_up_soon);
    // 18 MB of lines, then 1 MB without a single newline, then it stays.
    layout.service_with(
        "flood",
        "yes 'flood flood flood' | head -n 1000000\n\
         head -c 1000000 /dev/zero | tr '\\0' x\n\
         echo\nexec sleep 1000",
        "",
    );
    let ping = layout.path("ping");
    mkfifo(&ping);
    let runs = layout.quoted("healthy.runs");
    layout.service(
        "healthy",
        &format!(
            "echo run >> {runs}\nwhile :; do read word < {}; echo \"pong $word\"; done",
            layout.quoted("ping")
        ),
    );

    let mut pidvisor = layout.start();
    pidvisor.wait_for_log("shebang: FAILED");
    pidvisor.wait_for_log("quitter: FAILED");
    pidvisor.wait_until("the flood has been relayed", |p| {
        p.stdout_so_far()
            .contains(&format!("flood | {}", "x".repeat(100)))
    });
    // The healthy service still answers, through pidvisor's relay.
    fifo_writer(&mut pidvisor, &ping)
        .write_all(b"still-here\n")
        .expect("ping");
    pidvisor.wait_until("the healthy service answers", |p| {
        p.stdout_so_far().contains("healthy | pong still-here\n")
    });
    assert!(!pidvisor.has_exited());
    pidvisor.signal(libc::SIGTERM);
    let run = pidvisor.finish(PATIENCE);
    run.assert_code(0);

    assert_eq!(layout.lines("healthy.runs").len(), 1, "{run}");
    assert_eq!(log_count(&run.stderr, "healthy: started"), 1, "{run}");
    let expected_log = [
        format!("{dir}/missing/run: does not exist"),
        format!("{dir}/waiter/service.toml: after: \"missing\" is left out"),
        format!("{dir}/noexec/run: is not executable"),
        format!("shebang: cannot run '{dir}/shebang/run': No such file or directory (os error 2)"),
        "quitter: exited with code 1".to_owned(),
        "4 services: flood, healthy, quitter, shebang".to_owned(),
    ];
    for line in &expected_log {
        assert!(
            run.stderr.contains(line.as_str()),
            "log says {line:?}\n{run}"
        );
    }
    // Flooded or not, every line that came out is whole and prefixed.
    let stray = run
        .stdout
        .lines()
        .find(|l| !(l.starts_with("flood | ") || l.starts_with("healthy | ")));
    assert_eq!(stray, None, "stderr:\n{}", run.stderr);
    let endless_line_pieces = run
        .stdout
        .lines()
        .filter(|l| l.len() > 1000 && l.trim_start_matches("flood | ").bytes().all(|b| b == b'x'))
        .count();
    assert!(
        endless_line_pieces >= 1_000_000 / 16_384,
        "{endless_line_pieces} pieces"
    );
}
