//! `pidvisor --check DIR`: validates a services folder without starting anything; prints
//! every problem with its file (and line:column inside `service.toml`) and the fix on the
//! next line, and exits 1; a good folder (this repository's `services.d/`) exits 0.

use std::process::{Command, Output};

use crate::harness::PIDVISOR;
use crate::layout::Layout;

fn check(dir: &str) -> Output {
    Command::new(PIDVISOR)
        .args(["--check", dir])
        .env_remove("PIDVISOR_SERVICES_DIR")
        .output()
        .expect("running pidvisor --check")
}

#[test]
fn every_problem_of_a_broken_folder_is_printed_with_its_file_and_fix() {
    let layout = Layout::new("check-broken");
    let toml = |name: &str, text: &str| {
        layout.service_with(name, "exec sleep 1000", text);
    };
    layout.write("norun", "service.toml", "", 0o644);
    layout.write("noexec", "run", "#!/bin/sh\n", 0o644);
    toml("badtoml", "restart = \"always\"\nstop-timeout = 5 s\n");
    toml("unknownkey", "# a typo\nrestrat = \"always\"\n");
    toml("baduser", "user = \"no-such-user\"\n");
    toml("cycle-a", "after = [\"cycle-b\"]\n");
    toml("cycle-b", "after = [\"cycle-a\"]\n");
    toml("badsignal", "stop-signal = \"SIGFOO\"\n");
    toml("good", "");
    let dir = layout.path("services.d");
    let output = check(&dir);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = format!("{output:?}\n{stdout}");
    assert_eq!(output.status.code(), Some(1), "{report}");
    // (the problem line, the fix line after it)
    let expected = [
        (
            "badsignal/service.toml:1:15: stop-signal: \"SIGFOO\" is not a signal".to_owned(),
            "  use a name like \"TERM\", \"SIGINT\", \"RTMIN+3\" or a number".to_owned(),
        ),
        (
            "badtoml/service.toml:2:16: stop-timeout: ".to_owned(),
            "  fix the TOML syntax here".to_owned(),
        ),
        (
            "baduser/service.toml:1:8: user: \"no-such-user\" is not in /etc/passwd".to_owned(),
            "  add it to /etc/passwd in the image".to_owned(),
        ),
        (
            "noexec/run: is not executable".to_owned(),
            format!("  chmod +x {dir}/noexec/run"),
        ),
        (
            "norun/run: does not exist".to_owned(),
            format!("  create it: the program to run, then chmod +x {dir}/norun/run"),
        ),
        (
            "unknownkey/service.toml:2:1: restrat: unknown key".to_owned(),
            "  did you mean `restart`?".to_owned(),
        ),
        (
            "cycle-a/service.toml: after: dependency cycle: cycle-a -> cycle-b -> cycle-a"
                .to_owned(),
            "  remove one of these `after` entries".to_owned(),
        ),
        (
            "cycle-b/service.toml: after: dependency cycle: cycle-b -> cycle-a -> cycle-b"
                .to_owned(),
            "  remove one of these `after` entries".to_owned(),
        ),
    ];
    let lines: Vec<&str> = stdout.lines().collect();
    for (problem, fix) in &expected {
        let problem = format!("{dir}/{problem}");
        let at = lines
            .iter()
            .position(|l| l.starts_with(&problem))
            .unwrap_or_else(|| panic!("no line starts with {problem:?}\n{report}"));
        assert!(
            lines
                .get(at + 1)
                .is_some_and(|l| l.starts_with(fix.as_str())),
            "the fix {fix:?} follows {problem:?}\n{report}"
        );
    }
    assert_eq!(lines.last(), Some(&"8 problems in 8 services"), "{report}");
    assert_eq!(
        lines.len(),
        2 * expected.len() + 1,
        "nothing else: {report}"
    );
}

#[test]
fn the_repositorys_own_services_pass_the_check() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/services.d");
    let output = check(dir);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{output:?}\n{stdout}");
    assert_eq!(
        stdout,
        "ok: 2 services (gossip, webapp)\nstart order: webapp -> gossip\n"
    );
}
