//! The README's worked example, "Testing your restart policy", run as it is printed:
//! the files in examples/restart-policy/ are quoted verbatim in the README (checked here),
//! and test.sh runs with pidvisor and pidvisorctl on the PATH.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::harness::{PATIENCE, PIDVISOR, TempDir, as_pid_one};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/restart-policy");
const FILES: [&str; 3] = [
    "services.d/crasher/run",
    "services.d/crasher/service.toml",
    "test.sh",
];

#[test]
fn the_readme_quotes_the_restart_policy_example_verbatim() {
    let readme =
        fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md");
    for file in FILES {
        let text = fs::read_to_string(Path::new(EXAMPLE).join(file)).expect("example file");
        assert!(
            readme.contains(&text),
            "README.md does not quote examples/restart-policy/{file} verbatim"
        );
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for entry in fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

#[test]
fn the_readme_restart_policy_example_passes() {
    let dir = TempDir::new("ctl-readme");
    let work = dir.path().join("restart-policy");
    copy_dir(Path::new(EXAMPLE), &work);
    let _ = fs::remove_file(work.join("events.jsonl"));
    let bin = dir.path().join("bin");
    fs::create_dir(&bin).expect("bin");
    symlink(PIDVISOR, bin.join("pidvisor")).expect("symlink");
    symlink(PIDVISOR, bin.join("pidvisorctl")).expect("symlink");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // test.sh runs as PID 1 of its own namespace, under a watchdog: if it fails or hangs,
    // the pidvisor it started in the background goes with it instead of holding the
    // output pipes (and this test) open.
    let mut command = Command::new("timeout");
    command
        .args(["--signal=KILL", &PATIENCE.as_secs().to_string()])
        .args(as_pid_one("sh"))
        .arg("test.sh")
        .current_dir(&work)
        .env("PATH", path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PIDVISOR_") {
            command.env_remove(name);
        }
    }
    // s6-overlay's runtime folder in the test's own folder, not the host's /var/run/s6.
    command.env("PIDVISOR_S6_DIR", work.join("s6"));
    let output = command.output().expect("sh test.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = format!(
        "--- stdout:\n{stdout}--- stderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "test.sh failed\n{report}");
    assert!(
        stdout.contains("ok: the container's exit code is 3"),
        "{report}"
    );
    assert!(!stdout.contains("FAILED"), "{report}");
}
