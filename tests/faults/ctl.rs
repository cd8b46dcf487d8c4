//! Running `pidvisorctl` (a symlink to pidvisor, as users install it) against the
//! pidvisor of a test's temp dir.

use std::os::unix::fs::symlink;
use std::process::{Command, Output};

use crate::harness::{PIDVISOR, TempDir};

/// `pidvisorctl ARGS` against the control socket in `dir`, run to its end.
pub fn ctl(dir: &TempDir, args: &[&str]) -> Output {
    let path = dir.path().join("pidvisorctl");
    // Clients on several threads may make it at once: one of them wins.
    match symlink(PIDVISOR, &path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => panic!("symlink pidvisorctl: {e}"),
    }
    let mut command = Command::new(&path);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PIDVISOR_") {
            command.env_remove(name);
        }
    }
    command
        .args(args)
        .env("PIDVISOR_SOCKET", dir.path().join("control.sock"))
        .output()
        .unwrap_or_else(|e| panic!("running pidvisorctl {args:?}: {e}"))
}

/// `pidvisorctl ARGS`, which must succeed; its stdout.
pub fn ctl_ok(dir: &TempDir, args: &[&str]) -> String {
    let output = ctl(dir, args);
    assert!(output.status.success(), "pidvisorctl {args:?}: {output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}
