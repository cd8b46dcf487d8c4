//! The command line: `--version` and `--help` answer and exit 0, and a usage error (an
//! unknown option, an unparsable value on the command line or in a `PIDVISOR_*`
//! variable) exits 2 with exactly one line on stderr that starts with `pidvisor: `. Also
//! the log format: `pidvisor: LEVEL message` lines by default, JSON objects on request,
//! and nothing below the chosen level.

use crate::harness::{Launch, Run, TempDir};

fn assert_usage_error(run: &Run) {
    run.assert_code(2);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line on stderr\n{run}");
    assert!(
        lines[0].starts_with("pidvisor: "),
        "the line must start with 'pidvisor: '\n{run}"
    );
    assert!(run.stdout.is_empty(), "nothing on stdout\n{run}");
}

#[test]
fn version_flag_prints_name_and_version() {
    let dir = TempDir::new("version");
    for flag in ["--version", "-V"] {
        let run = Launch::direct(&dir, &[flag]).run();
        run.assert_code(0);
        assert_eq!(
            run.stdout,
            format!("pidvisor {}\n", env!("CARGO_PKG_VERSION")),
            "{run}"
        );
    }
}

#[test]
fn help_flag_documents_grace_option_and_its_environment_variable() {
    let dir = TempDir::new("help");
    for flag in ["--help", "-h"] {
        let run = Launch::direct(&dir, &[flag]).run();
        run.assert_code(0);
        assert!(run.stdout.contains("--grace"), "{run}");
        assert!(run.stdout.contains("PIDVISOR_GRACE"), "{run}");
    }
}

/// An answer that stdout cannot take (here /dev/full) is exit code 1, not a panic.
#[test]
fn help_version_and_check_on_a_full_stdout_exit_1_without_a_panic() {
    let dir = TempDir::new("full-stdout");
    let services = dir.file("services.d");
    std::fs::create_dir_all(&services).expect("services.d");
    for args in [
        &["--help"][..],
        &["--version"],
        &["--check", services.as_str()],
    ] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full");
        let run = Launch::direct(&dir, args).stdout_to(full).run();
        run.assert_code(1);
        assert!(!run.stderr.contains("panicked"), "{args:?}\n{run}");
    }
}

#[test]
fn unknown_option_is_a_one_line_usage_error() {
    let dir = TempDir::new("unknown-option");
    let run = Launch::direct(&dir, &["--bogus", "true"]).run();
    assert_usage_error(&run);
    assert!(run.stderr.contains("--bogus"), "names the culprit\n{run}");
}

#[test]
fn unparsable_grace_is_a_one_line_usage_error() {
    let dir = TempDir::new("bad-grace");
    assert_usage_error(&Launch::direct(&dir, &["--grace", "fast", "true"]).run());
    assert_usage_error(&Launch::direct(&dir, &["-g", "5 years", "true"]).run());
}

#[test]
fn unparsable_environment_variable_is_a_one_line_usage_error() {
    let dir = TempDir::new("bad-env");
    for (name, value) in [
        ("PIDVISOR_GRACE", "fast"),
        ("PIDVISOR_FORWARD_TO", "everyone"),
        ("PIDVISOR_LOG_LEVEL", "loud"),
        ("PIDVISOR_LOG_FORMAT", "xml"),
    ] {
        let run = Launch::direct(&dir, &["true"]).env(name, value).run();
        assert_usage_error(&run);
        assert!(run.stderr.contains(name), "names the variable\n{run}");
    }
}

#[test]
fn logs_are_prefixed_lines_or_json_objects_at_the_chosen_level() {
    let dir = TempDir::new("log-format");
    let main = ["sh", "-c", "exit 3"];

    let text = Launch::pid1(&dir, &main).run();
    text.assert_code(3);
    assert!(!text.log_lines().is_empty(), "logs at info level\n{text}");
    for line in text.stderr.lines() {
        assert!(
            ["pidvisor: INFO ", "pidvisor: WARN ", "pidvisor: ERROR "]
                .iter()
                .any(|prefix| line.starts_with(prefix)),
            "line {line:?} is not 'pidvisor: LEVEL message'\n{text}"
        );
    }

    let json = Launch::pid1(&dir, &main)
        .env("PIDVISOR_LOG_FORMAT", "json")
        .run();
    json.assert_code(3);
    assert!(
        json.stderr.contains(r#""level":"INFO""#),
        "logs at info level\n{json}"
    );
    for line in json.stderr.lines() {
        assert!(
            line.starts_with('{') && line.ends_with('}') && line.contains(r#""level":""#),
            "line {line:?} is not a JSON log object\n{json}"
        );
    }

    let quiet = Launch::pid1(&dir, &["--log-level", "error", "sh", "-c", "exit 3"]).run();
    quiet.assert_code(3);
    assert_eq!(quiet.stderr, "", "nothing below error level\n{quiet}");
}
