//! Hostile service folders: wrong types, out-of-range and huge values, invalid UTF-8, a
//! 10 MB file, symbolic-link loops, `run` as a folder or a FIFO, a dangling link, a script
//! that is not executable or whose interpreter is missing, and a folder of 1,000 entries.
//! `--check` reports each with its file, key and fix; a boot leaves each out with the same
//! message and runs the healthy services.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::process::Command;

use crate::harness::{PATIENCE, PIDVISOR, TempDir, heavy, mkfifo, poll_until};
use crate::support::{ctl, service, start};

/// Writes `services.d/<name>/<file>` with `bytes` and `mode`.
fn write(dir: &TempDir, name: &str, file: &str, bytes: &[u8], mode: u32) {
    let path = dir.path().join("services.d").join(name).join(file);
    fs::create_dir_all(path.parent().expect("a folder")).expect("service folder");
    fs::write(&path, bytes).expect("write");
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
}

fn folder(dir: &TempDir, name: &str) -> std::path::PathBuf {
    let path = dir.path().join("services.d").join(name);
    fs::create_dir_all(&path).expect("service folder");
    path
}

/// `pidvisor --check DIR`: (exit code, stdout).
fn check(dir: &TempDir) -> (i32, String) {
    let output = Command::new(PIDVISOR)
        .args(["--check", &dir.file("services.d")])
        .env_remove("PIDVISOR_SERVICES_DIR")
        .output()
        .expect("running pidvisor --check");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    (output.status.code().unwrap_or(-1), stdout)
}

/// Every kind of broken folder, each as one service; returns (service, the problem line's
/// end, the fix line), as `--check` and the boot log give them.
fn hostile_folders(dir: &TempDir) -> Vec<(&'static str, String, &'static str)> {
    let sleeper = b"#!/bin/sh\nexec sleep 1000\n";
    let toml = |name: &str, text: &[u8]| {
        write(dir, name, "run", sleeper, 0o755);
        write(dir, name, "service.toml", text, 0o644);
    };
    toml("wrong-type", b"critical = \"yes\"\n");
    toml(
        "out-of-range",
        b"restart = \"always\"\nmax-restarts = 100000\n",
    );
    toml("huge", b"stop-timeout = 99999999999999999999\n");
    toml("bad-utf8", b"# fine\nrestart = \"\xff\xfe\"\n");
    toml("ten-mb", &vec![b'#'; 10_000_000]);
    write(dir, "toml-loop", "run", sleeper, 0o755);
    symlink(
        "service.toml",
        folder(dir, "toml-loop").join("service.toml"),
    )
    .expect("loop");
    write(dir, "toml-fifo", "run", sleeper, 0o755);
    mkfifo(
        &folder(dir, "toml-fifo")
            .join("service.toml")
            .to_string_lossy(),
    );
    fs::create_dir_all(folder(dir, "run-folder").join("run")).expect("run/");
    mkfifo(&folder(dir, "run-fifo").join("run").to_string_lossy());
    symlink("/nonexistent/program", folder(dir, "dangling").join("run")).expect("dangling");
    symlink("run", folder(dir, "run-loop").join("run")).expect("run loop");
    write(dir, "not-executable", "run", sleeper, 0o644);
    write(
        dir,
        "no-interpreter",
        "run",
        b"#!/no/such/interpreter\n",
        0o755,
    );
    // ELOOP as this build's libc words it (glibc "Too many levels of symbolic links",
    // musl "Symbolic link loop"), with std's "(os error 40)".
    let eloop = std::io::Error::from_raw_os_error(libc::ELOOP);
    [
        ("wrong-type", "service.toml:1:12: critical: invalid type: a string, expected a boolean".to_owned(), "write a boolean here"),
        ("out-of-range", "service.toml:2:16: max-restarts: 100000 is out of range".to_owned(), "use 0 (never give up) to 1000"),
        ("huge", "service.toml:1:16: stop-timeout: invalid type: an integer past 64 bits, expected a string or an integer".to_owned(), "use a smaller number: integers stop at 9223372036854775807"),
        ("bad-utf8", "service.toml: cannot read it: not UTF-8 (line 2)".to_owned(), "save it as UTF-8 text"),
        ("ten-mb", "service.toml: cannot read it: larger than 1048576 bytes".to_owned(), "make it smaller: it holds settings only"),
        ("toml-loop", format!("service.toml: cannot read it: {eloop}"), "a symbolic link leads back to itself: point it at a real file"),
        ("toml-fifo", "service.toml: cannot read it: not a regular file".to_owned(), "make it a regular file (not a FIFO, device or folder)"),
        ("run-folder", "run: is not a regular file".to_owned(), "make it a program or script"),
        ("run-fifo", "run: is not a regular file".to_owned(), "make it a program or script"),
        ("dangling", "run: is a symbolic link to /nonexistent/program, which does not exist".to_owned(), "point the link at the program"),
        ("run-loop", format!("run: cannot read it: {eloop}"), "a symbolic link leads back to itself: point it at a real file"),
        ("not-executable", "run: is not executable".to_owned(), "chmod +x"),
    ]
    .into()
}

#[test]
fn check_names_the_file_key_and_fix_of_every_hostile_folder() {
    let dir = TempDir::new("hostile-check");
    let expected = hostile_folders(&dir);
    service(&dir, "healthy", "exec sleep 1000", "");
    let (code, stdout) = check(&dir);
    assert_eq!(code, 1, "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    let services = dir.file("services.d");
    for (name, problem, fix) in &expected {
        let wanted = format!("{services}/{name}/{problem}");
        let at = lines
            .iter()
            .position(|line| *line == wanted)
            .unwrap_or_else(|| panic!("no line {wanted:?} in\n{stdout}"));
        assert!(
            lines[at + 1].starts_with(&format!("  {fix}")),
            "{name}: the fix after {wanted:?}\n{stdout}"
        );
    }
    // Only the boot-independent check finds the missing interpreter before it runs.
    let interpreter = format!(
        "{services}/no-interpreter/run:1:1: its interpreter /no/such/interpreter does not exist"
    );
    assert!(lines.contains(&interpreter.as_str()), "{stdout}");
    assert_eq!(
        lines.last(),
        Some(&"13 problems in 13 services"),
        "{stdout}"
    );
}

#[test]
fn a_boot_leaves_each_hostile_folder_out_with_its_message_and_runs_the_healthy_one() {
    let dir = TempDir::new("hostile-boot");
    let expected = hostile_folders(&dir);
    write(
        &dir,
        "no-interpreter",
        "service.toml",
        b"restart-delay = \"10ms\"\nmax-restarts = 1\n",
        0o644,
    );
    let marker = dir.file("healthy.runs");
    service(
        &dir,
        "healthy",
        &format!("echo run >> {marker}\nexec sleep 1000"),
        "",
    );
    let mut pidvisor = start(&dir, &[]);
    pidvisor.wait_for_log("no-interpreter: FAILED");
    let services = dir.file("services.d");
    for (name, problem, _) in &expected {
        let wanted = format!("{services}/{name}/{problem}");
        assert!(
            pidvisor.stderr_so_far().contains(&wanted),
            "log: {wanted}\n{}",
            pidvisor.stderr_so_far()
        );
    }
    assert!(
        pidvisor.stderr_so_far().contains(&format!(
            "cannot run '{services}/no-interpreter/run': its interpreter /no/such/interpreter (the #! line) does not exist"
        )),
        "{}",
        pidvisor.stderr_so_far()
    );
    let status = ctl(&dir, &["status", "healthy", "--json"]).expect(0).json();
    assert_eq!(status["services"][0]["state"], "ready", "{status}");
    assert!(!pidvisor.has_exited());
    let run = pidvisor.shut_down();
    run.assert_code(0);
    assert_eq!(
        fs::read_to_string(&marker).expect("marker"),
        "run\n",
        "{run}"
    );
}

/// A folder of 1,000 entries: 900 healthy services, 90 broken ones of nine kinds, and ten
/// entries that are not services. `--check` lists the 90; a boot runs the 900.
#[test]
fn a_thousand_entries_some_broken_the_healthy_ones_all_run() {
    let _heavy = heavy();
    let dir = TempDir::new("hostile-thousand");
    for i in 0..1000 {
        let name = format!("svc-{i:04}");
        match i % 100 {
            0 => write(
                &dir,
                &format!(".hidden-{i:04}"),
                "run",
                b"#!/bin/sh\n",
                0o755,
            ),
            10 | 20 | 30 | 40 | 50 | 60 | 70 | 80 | 90 => {
                let broken: (&str, &[u8], u32) = match i % 100 / 10 {
                    1 => ("service.toml", b"restrat = \"always\"\n", 0o644),
                    2 => ("service.toml", b"stop-signal = \"SIGFOO\"\n", 0o644),
                    3 => ("service.toml", b"after = [\"no-such-service\"]\n", 0o644),
                    4 => ("service.toml", b"user = \"no-such-user\"\n", 0o644),
                    5 => ("service.toml", b"\xc3\x28 = 1\n", 0o644),
                    6 => ("service.toml", b"ready = { notify-fd = 1 }\n", 0o644),
                    7 => ("service.toml", b"umask = \"888\"\n", 0o644),
                    8 => ("service.toml", b"[env]\n\"A=B\" = \"x\"\n", 0o644),
                    _ => ("run", b"#!/bin/sh\nexec sleep 1000\n", 0o600),
                };
                write(&dir, &name, "run", b"#!/bin/sh\nexec sleep 1000\n", 0o755);
                write(&dir, &name, broken.0, broken.1, broken.2);
            }
            _ => write(&dir, &name, "run", b"#!/bin/sh\nexec sleep 1000\n", 0o755),
        }
    }
    let (code, stdout) = check(&dir);
    assert_eq!(code, 1, "{stdout}");
    assert_eq!(
        stdout.lines().last(),
        Some("90 problems in 90 services"),
        "{stdout}"
    );

    let mut pidvisor = start(&dir, &[]);
    poll_until(PATIENCE, "900 services ready", || {
        let status = ctl(&dir, &["status", "--json"]).expect(0).json();
        let services = status["services"].as_array().cloned().unwrap_or_default();
        let ready = services.iter().filter(|s| s["state"] == "ready").count();
        match (services.len(), ready) {
            (900, 900) => Ok(()),
            seen => Err(format!("(services, ready) = {seen:?}")),
        }
    });
    assert!(!pidvisor.has_exited());
    let run = pidvisor.shut_down();
    run.assert_code(0);
    assert!(
        run.stderr.contains("900 services: svc-0001, svc-0002"),
        "{run}"
    );
}
