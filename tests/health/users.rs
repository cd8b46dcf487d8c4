//! `health` and `ping` for a container that runs as a non-root user: they work for the
//! user pidvisor runs as, and are a plain "no" (exit 1) for anyone the socket refuses.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};

use crate::harness::{PATIENCE, PIDVISOR, TempDir, wait_until};
use crate::support::{ctl_path, service, socket};

/// `COMMAND ARGS` as user nobody, through setpriv (util-linux).
fn as_nobody(program: &str) -> Command {
    let mut command = Command::new("setpriv");
    command
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
        .arg(program);
    command
}

/// pidvisor running as nobody (not PID 1: a subreaper), killed at the end.
struct NobodysPidvisor(Child);

impl Drop for NobodysPidvisor {
    /// SIGTERM, so that it stops its service too; SIGKILL if it does not exit.
    fn drop(&mut self) {
        let pid = self.0.id() as i32;
        // SAFETY: kill has no memory preconditions; the pid is our unreaped child's.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let child = &mut self.0;
        let exited = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_until(PATIENCE, "pidvisor (as nobody) has exited", || {
                child.try_wait().ok().flatten().is_some()
            })
        }));
        if exited.is_err() {
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let _ = self.0.wait();
        }
    }
}

fn probe_as_nobody(dir: &TempDir, args: &[&str]) -> (i32, String) {
    let output = as_nobody(&ctl_path(dir))
        .args(args)
        .env("PIDVISOR_SOCKET", socket(dir))
        .output()
        .expect("setpriv runs pidvisorctl as nobody");
    let text = String::from_utf8_lossy(&output.stdout) + String::from_utf8_lossy(&output.stderr);
    (output.status.code().unwrap_or(-1), text.into_owned())
}

#[test]
fn a_non_root_pidvisor_answers_its_own_user_and_refuses_others_with_a_plain_no() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to run pidvisor as another user");
        return;
    }
    let dir = TempDir::new("health-nobody");
    // Writable by nobody, sticky like /tmp: pidvisor refuses a socket folder others could
    // write to without the sticky bit.
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o1777)).expect("chmod dir");
    service(&dir, "web", "exec sleep 1000", "");
    for path in ["services.d", "services.d/web", "services.d/web/run"] {
        fs::set_permissions(dir.path().join(path), fs::Permissions::from_mode(0o755))
            .expect("chmod");
    }
    let pidvisor = as_nobody(PIDVISOR)
        .args([
            "--services-dir",
            &dir.file("services.d"),
            "--socket",
            &socket(&dir),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("pidvisor as nobody");
    let _pidvisor = NobodysPidvisor(pidvisor);
    wait_until(
        PATIENCE,
        "pidvisor (as nobody) answers its own user",
        || probe_as_nobody(&dir, &["health"]).0 == 0,
    );
    let (code, text) = probe_as_nobody(&dir, &["ping"]);
    assert_eq!((code, text.trim()), (0, "pidvisor: up"));

    // Root gets in too; another user is refused by the socket's mode: a plain 1.
    let (code, text) = {
        let output = Command::new(ctl_path(&dir))
            .args(["health"])
            .env("PIDVISOR_SOCKET", socket(&dir))
            .output()
            .expect("pidvisorctl");
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    assert_eq!((code, text.trim()), (0, "healthy"));
    let output = Command::new("setpriv")
        .args(["--reuid=daemon", "--regid=daemon", "--clear-groups", "--"])
        .arg(ctl_path(&dir))
        .arg("health")
        .env("PIDVISOR_SOCKET", socket(&dir))
        .output()
        .expect("setpriv runs pidvisorctl as daemon");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("permission denied"), "{stderr}");
}
