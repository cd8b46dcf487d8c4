//! pidvisor without the usual freedoms: as a user other than root (`docker run --user`,
//! Kubernetes `runAsUser`), on a read-only root with only `/run` writable, and with
//! nothing writable at all. What works runs; what cannot is refused with a clear message;
//! pidvisor itself always runs.
//!
//! Each runs pidvisor as PID 1 of its own PID and mount namespaces (the read-only root is
//! a read-only remount of `/` in that mount namespace only), with a main command that asks
//! `pidvisorctl` and exits: pidvisor's exit code is then that command's.

use std::fs;
use std::os::unix::fs::{PermissionsExt, chown, symlink};
use std::process::{Command, Output};

use crate::harness::{PIDVISOR, TempDir, sh_quote};
use crate::support::service;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("skipped: needs root for mount namespaces and switching users");
    }
    root
}

/// Runs `setup` (shell commands, as root in the new mount namespace), then pidvisor as PID
/// 1 with `args`; bounded by a watchdog.
fn run_pid1(dir: &TempDir, setup: &str, args: &[&str]) -> Output {
    let ctl = ctl_link(dir);
    let words: Vec<String> = args.iter().map(|a| sh_quote(a)).collect();
    let script = format!("{setup}\nexec {} {}", sh_quote(PIDVISOR), words.join(" "));
    let mut command = Command::new("timeout");
    command
        .args([
            "--kill-after=5",
            "60",
            "unshare",
            "--mount",
            "--propagation",
            "private",
        ])
        .args([
            "--pid",
            "--fork",
            "--mount-proc",
            "--kill-child",
            "sh",
            "-c",
            &script,
        ])
        .current_dir(dir.path())
        .env("CTL", &ctl);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PIDVISOR_") {
            command.env_remove(name);
        }
    }
    command.output().expect("running unshare")
}

/// `pidvisorctl` in `dir`: a symlink to pidvisor.
fn ctl_link(dir: &TempDir) -> std::path::PathBuf {
    let ctl = dir.path().join("pidvisorctl");
    symlink(PIDVISOR, &ctl).expect("pidvisorctl");
    ctl
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The main command: status once `web` is ready, or pidvisorctl's exit code.
const ASK: &str = "\"$CTL\" wait web --state ready --timeout 20s && \"$CTL\" status web";

#[test]
fn a_read_only_root_with_a_writable_run_keeps_the_control_socket() {
    if !is_root() {
        return;
    }
    let dir = TempDir::new("hostile-ro-run");
    service(&dir, "web", "exec sleep 1000", "");
    let services = dir.file("services.d");
    let setup = "mount -o remount,bind,ro / && mount -t tmpfs -o mode=0755 run /run";
    let output = run_pid1(&dir, setup, &["--services-dir", &services, "sh", "-c", ASK]);
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    // pidvisorctl reached it at its default path (the status below); no warning either.
    assert!(!stderr.contains("no control socket"), "{stderr}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("web") && l.contains("ready")),
        "{stdout}"
    );
}

#[test]
fn with_nothing_writable_the_control_socket_is_off_with_a_warning_and_all_else_runs() {
    if !is_root() {
        return;
    }
    let dir = TempDir::new("hostile-ro-all");
    service(&dir, "web", "exec sleep 1000", "");
    let services = dir.file("services.d");
    let main = "\"$CTL\" status; echo \"pidvisorctl exit $?\"";
    let output = run_pid1(
        &dir,
        "mount -o remount,bind,ro /",
        &["--services-dir", &services, "sh", "-c", main],
    );
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    // "creating /run/pidvisor: ..." or, where the folder exists, "bind ...: ...".
    let warning = stderr
        .lines()
        .find(|l| l.starts_with("pidvisor: WARN no control socket, pidvisorctl will not work: "))
        .unwrap_or_else(|| panic!("no warning about the socket:\n{stderr}"));
    assert!(
        warning.ends_with(
            "/run/pidvisor: Read-only file system (os error 30); give it a writable place \
             with --socket or PIDVISOR_SOCKET"
        ) || warning.ends_with(
            "/run/pidvisor/control.sock: Read-only file system (os error 30); give it a \
             writable place with --socket or PIDVISOR_SOCKET"
        ),
        "{warning}"
    );
    assert!(stdout.contains("pidvisorctl exit 4"), "{stdout}");
    assert!(stderr.contains("web: started"), "{stderr}");
}

/// Shell lines, run as root in the new PID namespace, that leave the folder a root
/// pidvisor killed with SIGKILL would have left in its cgroup, under the name this
/// pidvisor will want (the kernel reuses namespace ids): one service's group already
/// there, owned by root. Nothing where `$CGROUP_DIR` is empty (no cgroup v2).
const PLANT_STALE_CGROUPS: &str = r#"if [ -n "$CGROUP_DIR" ]; then
  stale="$CGROUP_DIR/pidvisor-$(stat -L -c %i /proc/self/ns/pid)-1"
  mkdir -p "$stale/web" || exit 99
fi"#;

/// The folder of this process's cgroup in a writable cgroup v2 mount, if any.
fn own_cgroup_dir() -> Option<String> {
    let cgroup = fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = cgroup.lines().find_map(|line| line.strip_prefix("0::"))?;
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mount = mountinfo.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let writable = fields.get(5).is_some_and(|o| o.starts_with("rw"));
        (line.contains(" - cgroup2 ") && writable && fields.get(3) == Some(&"/"))
            .then(|| fields.get(4).map(|m| m.to_string()))
            .flatten()
    })?;
    Some(format!("{mount}{path}").trim_end_matches('/').to_owned())
}

#[test]
fn as_another_user_its_own_services_run_and_other_users_are_refused_by_name() {
    if !is_root() {
        return;
    }
    let dir = TempDir::new("hostile-non-root");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    // Ready once they have said who they are.
    let run = "echo \"uid $(id -u)\"\necho >&3\nexec sleep 1000";
    service(&dir, "web", run, "ready = { notify-fd = 3 }\n");
    let toml = "ready = { notify-fd = 3 }\nuser = \"nobody\"\n";
    service(&dir, "as-self", run, toml);
    service(&dir, "as-root", "exec sleep 1000", "user = \"root\"\n");
    let sockets = dir.path().join("sockets");
    fs::create_dir(&sockets).expect("sockets");
    chown(&sockets, Some(65534), Some(65534)).expect("chown");
    let socket = sockets.join("control.sock");
    let socket = socket.to_str().expect("UTF-8");
    let services = dir.file("services.d");
    let main = format!(
        "export PIDVISOR_SOCKET={socket}; \"$CTL\" wait as-self --state ready --timeout 20s && {ASK}"
    );
    let setpriv = "setpriv --reuid=65534 --regid=65534 --clear-groups --";
    let script_args = [
        "--socket",
        socket,
        "--services-dir",
        &services,
        "sh",
        "-c",
        &main,
    ];
    let words: Vec<String> = script_args.iter().map(|a| sh_quote(a)).collect();
    let output = Command::new("timeout")
        .args([
            "--kill-after=5",
            "60",
            "unshare",
            "--pid",
            "--fork",
            "--mount-proc",
        ])
        .args(["--kill-child", "sh", "-c"])
        .arg(format!(
            "{PLANT_STALE_CGROUPS}\nexec {setpriv} {} {}",
            sh_quote(PIDVISOR),
            words.join(" ")
        ))
        .current_dir(dir.path())
        .env("CTL", ctl_link(&dir))
        .env("CGROUP_DIR", own_cgroup_dir().unwrap_or_default())
        .env_remove("PIDVISOR_SOCKET")
        .output()
        .expect("unshare");
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    let refused = format!(
        "{services}/as-root/service.toml: user: pidvisor runs as uid 65534 gid 65534, not \
         root, so it cannot run this service as \"root\" (uid 0 gid 0)\n  remove `user` (the \
         service then runs as pidvisor's user), or start pidvisor as root"
    );
    assert!(stderr.contains(&refused), "{stderr}");
    assert!(stdout.contains("web | uid 65534"), "{stdout}");
    assert!(stdout.contains("as-self | uid 65534"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("web") && l.contains("ready")),
        "{stdout}"
    );
}
