//! Restart policies: `always`, `on-failure` and `never`, each against every way a service
//! can end (exit 0, a failing exit code, a signal, SIGKILL), and `success-exit-codes`.
//!
//! Each service appends a line to its own `runs` file when it starts and ends the chosen
//! way; on its third run it stays up, so a restarting service settles at 3 runs. A service
//! that must not restart has to say so in the log, and its count must still be 1 once
//! the restarting ones (started at the same moment) have reached 3.

use crate::layout::{Layout, log_count};

/// How a run ends: (service name, the end of its script, what pidvisor logs).
const EXITS: [(&str, &str, &str); 4] = [
    ("code0", "exit 0", "exited with code 0"),
    ("code3", "exit 3", "exited with code 3"),
    ("term", "kill -TERM $$; exit 99", "killed by SIGTERM"),
    ("kill", "kill -KILL $$; exit 99", "killed by SIGKILL"),
];

/// Writes one service per exit kind under `policy`; returns (name, log text) pairs.
fn services(layout: &Layout, policy: &str, extra_toml: &str) -> Vec<(String, String)> {
    EXITS
        .iter()
        .map(|(name, end, logged)| {
            let runs = layout.quoted(&format!("{name}.runs"));
            let body = format!(
                "echo run >> {runs}\n\
                 if [ \"$(wc -l < {runs})\" -ge 3 ]; then exec sleep 1000; fi\n\
                 {end}"
            );
            let toml = format!(
                "restart = \"{policy}\"\nrestart-delay = \"10ms\"\n\
                 restart-delay-max = \"20ms\"\n{extra_toml}"
            );
            layout.service_with(name, &body, &toml);
            ((*name).to_owned(), (*logged).to_owned())
        })
        .collect()
}

/// Runs the services of `policy`; `restarted(name)` says which ones must come back.
fn check_policy(policy: &str, extra_toml: &str, restarted: impl Fn(&str) -> bool) {
    let layout = Layout::new(&format!("restart-{policy}"));
    let services = services(&layout, policy, extra_toml);
    let mut pidvisor = layout.start();
    for (name, logged) in &services {
        pidvisor.wait_for_log(&format!("{name}: {logged}"));
        if restarted(name) {
            layout.wait_for_lines(&mut pidvisor, &format!("{name}.runs"), 3);
        } else {
            pidvisor.wait_for_log(&format!("{name}: not restarted (restart policy)"));
        }
    }
    for (name, _) in &services {
        let runs = layout.lines(&format!("{name}.runs")).len();
        let expected = if restarted(name) { 3 } else { 1 };
        assert_eq!(
            runs,
            expected,
            "{name} under restart = \"{policy}\" ran {runs} times\n{}",
            pidvisor.stderr_so_far()
        );
    }
    let run = pidvisor.shut_down();
    for (name, _) in &services {
        let started = log_count(&run.stderr, &format!("{name}: started (pid"));
        let expected = if restarted(name) { 3 } else { 1 };
        assert_eq!(started, expected, "{name}: started {started} times\n{run}");
    }
}

#[test]
fn always_restarts_after_every_kind_of_exit() {
    check_policy("always", "", |_| true);
}

#[test]
fn on_failure_restarts_after_a_failing_code_or_a_signal_but_not_after_success() {
    check_policy("on-failure", "", |name| name != "code0");
}

#[test]
fn on_failure_counts_success_exit_codes_as_success() {
    check_policy("on-failure", "success-exit-codes = [0, 3]\n", |name| {
        !name.starts_with("code")
    });
}

#[test]
fn never_restarts_after_any_kind_of_exit() {
    check_policy("never", "", |_| false);
}
