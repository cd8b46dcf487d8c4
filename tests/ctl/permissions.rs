//! Only root and pidvisor's own user get in: the socket file is 0600, and a peer whose
//! uid (SO_PEERCRED) is neither is refused even when the file would let it connect.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::harness::TempDir;
use crate::support::{ctl, ctl_path, service, socket, start};

/// `pidvisorctl ARGS` as user nobody.
fn ctl_as_nobody(dir: &TempDir, args: &[&str]) -> (i32, String) {
    let output = Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
        .arg(ctl_path(dir))
        .args(args)
        .env("PIDVISOR_SOCKET", socket(dir))
        .output()
        .expect("setpriv (util-linux) runs pidvisorctl as nobody");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_socket_is_0600_and_other_users_are_refused_by_mode_and_by_peer_uid() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to run a client as another user");
        return;
    }
    let dir = TempDir::new("ctl-permissions");
    service(&dir, "web", "exec sleep 1000", "");
    // The temp dir is traversable by everyone, so only the socket itself protects it.
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod dir");
    let _pidvisor = start(&dir, &[]);
    let mode = fs::metadata(socket(&dir))
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "socket mode {mode:o}");

    // 1. The file mode: connect(2) itself is refused.
    let (code, stderr) = ctl_as_nobody(&dir, &["status"]);
    assert_eq!(code, 4, "{stderr}");
    assert!(
        stderr.contains(&format!("permission denied on {}", socket(&dir))),
        "{stderr}"
    );

    // 2. SO_PEERCRED: with the file opened up, pidvisor itself refuses the uid.
    fs::set_permissions(socket(&dir), fs::Permissions::from_mode(0o666)).expect("chmod");
    for args in [&["status"][..], &["stop", "web"], &["shutdown"]] {
        let (code, stderr) = ctl_as_nobody(&dir, args);
        assert_eq!(code, 4, "{args:?}: {stderr}");
        assert!(
            stderr.contains("permission denied: uid 65534 is neither root nor pidvisor's uid 0"),
            "{args:?}: {stderr}"
        );
    }
    // Root still gets in, and nothing happened to the service.
    let run = ctl(&dir, &["status", "web", "--json"]).expect(0);
    assert_eq!(run.json()["services"][0]["state"], "ready");
}
