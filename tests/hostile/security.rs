//! Security: a service run as `nobody` really is nobody (ids, groups, no capability, no
//! new privileges through a setuid program unless it opts out), holds no descriptor of
//! pidvisor's and starts with a clean signal state; the control socket's folder is
//! checked at start; and no environment value reaches pidvisor's own log or its events.

use std::fs;
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::Path;

use crate::harness::{PATIENCE, TempDir, descendants_of, fd_targets, poll_until, status_field};
use crate::support::{ctl, events_file, service, start};

/// Skips (with a note) when not root: switching users needs it.
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("skipped: needs root to run services as another user");
    }
    root
}

/// The host pid of the process in `pidvisor`'s namespace whose command line is `cmdline`.
fn process_with_cmdline(root: i32, cmdline: &str) -> Option<i32> {
    descendants_of(root).into_iter().map(|p| p.pid).find(|pid| {
        fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).replace('\0', " ").trim() == cmdline)
    })
}

#[test]
fn a_service_run_as_nobody_is_nobody_with_no_way_back_to_root() {
    if !is_root() {
        return;
    }
    let dir = TempDir::new("hostile-nobody");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    // A setuid-root `id`: what a service could use to become root again.
    let suid_id = dir.path().join("suid-id");
    fs::copy("/usr/bin/id", &suid_id).expect("copy id");
    chown(&suid_id, Some(0), Some(0)).expect("chown");
    fs::set_permissions(&suid_id, fs::Permissions::from_mode(0o4755)).expect("setuid");
    let suid = suid_id.display();
    for (name, toml, sleep) in [
        ("guest", "user = \"nobody\"\n", "sleep 1001"),
        (
            "sudoer",
            "user = \"nobody\"\nno-new-privileges = false\n",
            "sleep 1002",
        ),
    ] {
        service(
            &dir,
            name,
            &format!("echo \"euid $({suid} -u)\"\nexec {sleep}"),
            toml,
        );
    }
    let mut pidvisor = start(&dir, &[]);
    pidvisor.wait_until("both services said their euid", |p| {
        let out = p.stdout_so_far();
        out.contains("guest | euid") && out.contains("sudoer | euid")
    });
    let out = pidvisor.stdout_so_far();
    assert!(out.contains("guest | euid 65534\n"), "{out}");
    // The control: without no-new-privileges the setuid bit works, so the test can fail.
    assert!(out.contains("sudoer | euid 0\n"), "{out}");

    let root = pidvisor.host_pid();
    let (mut guest, mut sudoer) = (None, None);
    poll_until(PATIENCE, "both services have exec'd their sleep", || {
        guest = process_with_cmdline(root, "sleep 1001");
        sudoer = process_with_cmdline(root, "sleep 1002");
        match (guest, sudoer) {
            (Some(_), Some(_)) => Ok(()),
            seen => Err(format!("{seen:?}")),
        }
    });
    let (guest, sudoer) = (guest.unwrap_or_default(), sudoer.unwrap_or_default());
    let field = |pid, name| status_field(pid, name).unwrap_or_default();
    for (pid, no_new_privs) in [(guest, "1"), (sudoer, "0")] {
        assert_eq!(field(pid, "Uid"), "65534\t65534\t65534\t65534");
        assert_eq!(field(pid, "Gid"), "65534\t65534\t65534\t65534");
        assert_eq!(field(pid, "Groups"), "65534");
        assert_eq!(field(pid, "NoNewPrivs"), no_new_privs);
        for caps in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
            assert_eq!(field(pid, caps), "0000000000000000", "{caps}");
        }
        assert_eq!(field(pid, "SigBlk"), "0000000000000000");
        assert_eq!(field(pid, "SigIgn"), "0000000000000000");
        let fds = fd_targets(pid);
        assert_eq!(fds.len(), 3, "only stdin, stdout, stderr: {fds:?}");
        assert_eq!(fds[0], "/dev/null", "{fds:?}");
    }
    pidvisor.shut_down().assert_code(0);
}

/// Starts pidvisor with its control socket in `folder`; returns its log once it stopped.
fn log_with_socket_in(dir: &TempDir, folder: &Path) -> (String, i32) {
    let socket = folder.join("control.sock");
    let socket = socket.to_str().expect("UTF-8");
    let pidvisor = start_without_socket_wait(dir, socket);
    let code = ctl(dir, &["--socket", socket, "status"]).code;
    let run = pidvisor.shut_down();
    run.assert_code(0);
    (run.stderr, code)
}

fn start_without_socket_wait(dir: &TempDir, socket: &str) -> crate::harness::Pidvisor {
    let mut pidvisor =
        crate::harness::Launch::pid1(dir, &["--services-dir", &dir.file("services.d")])
            .env("PIDVISOR_SOCKET", socket)
            .start();
    pidvisor.wait_for_log("web: started");
    pidvisor
}

#[test]
fn a_socket_folder_others_could_write_to_is_refused_and_pidvisor_runs_on() {
    if !is_root() {
        return;
    }
    let dir = TempDir::new("hostile-socket-folder");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    service(&dir, "web", "exec sleep 1000", "");
    let folder = |name: &str, mode: u32, owner: u32| {
        let path = dir.path().join(name);
        fs::create_dir(&path).expect("folder");
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
        chown(&path, Some(owner), None).expect("chown");
        path
    };
    for (path, why) in [
        (
            folder("open", 0o777, 0),
            "it is writable by others (mode 0777)",
        ),
        (
            folder("group", 0o775, 0),
            "it is writable by others (mode 0775)",
        ),
        (folder("theirs", 0o755, 65534), "it belongs to uid 65534"),
    ] {
        let (log, code) = log_with_socket_in(&dir, &path);
        let refused = format!(
            "WARN no control socket, pidvisorctl will not work: refusing {} for the control socket: {why}",
            path.display()
        );
        assert!(log.contains(&refused), "{refused}\n{log}");
        assert!(log.contains("chmod go-w"), "{log}");
        assert_eq!(code, 4, "pidvisorctl finds no socket");
    }
    // Sticky, like /tmp: others can neither remove nor rename pidvisor's socket.
    let (log, code) = log_with_socket_in(&dir, &folder("sticky", 0o1777, 0));
    assert_eq!(code, 0, "{log}");
}

#[test]
fn no_environment_value_reaches_pidvisors_log_or_events() {
    let dir = TempDir::new("hostile-secrets");
    let secret = format!(
        "s3cret-{}-{:x}",
        std::process::id(),
        std::ptr::addr_of!(dir) as usize
    );
    let inherited = format!("{secret}-inherited");
    let table = format!("{secret}-table");
    // Its value is in service.toml; it crashes once, is restarted, is signalled.
    service(
        &dir,
        "web",
        "[ -e crashed ] || { touch crashed; exit 3; }\nexec sleep 1000",
        &format!("env = {{ API_TOKEN = \"{table}\" }}\nrestart-delay = \"10ms\"\n"),
    );
    // Broken ones quote what they can, never a value of the environment.
    service(
        &dir,
        "bad-name",
        "exec sleep 1000",
        &format!("env = {{ \"A=B\" = \"{table}-1\" }}\n"),
    );
    service(
        &dir,
        "bad-nul",
        "exec sleep 1000",
        &format!("env = {{ PIN = \"{table}-2\\u0000\" }}\n"),
    );
    // A secret under the wrong type, or where a table belongs: serde quotes such values.
    let number = format!("{}", u64::from(std::process::id()) * 1_000_003 + 7);
    let toml = format!("env = {{ PIN = {number} }}\n");
    service(&dir, "bad-type", "exec sleep 1000", &toml);
    let toml = format!("env = \"TOKEN={table}-3\"\n");
    service(&dir, "bad-table", "exec sleep 1000", &toml);
    let mut pidvisor = start(
        &dir,
        &[
            ("PIDVISOR_LOG_LEVEL", "trace"),
            ("DATABASE_PASSWORD", &inherited),
        ],
    );
    pidvisor.wait_for_log("web: started");
    crate::support::wait_for_event(&dir, "web restarted after its crash", |e| {
        e["event"] == "started" && e["service"] == "web" && pidvisor_restarted(&dir)
    });
    ctl(&dir, &["signal", "web", "HUP"]);
    ctl(&dir, &["status", "--json"]).expect(0);
    ctl(&dir, &["events", "--json"]).expect(0);
    let run = pidvisor.shut_down();
    let events = fs::read_to_string(events_file(&dir)).expect("events");
    assert!(
        run.stderr.contains("TRACE") || run.stderr.contains("DEBUG"),
        "{run}"
    );
    for broken in ["bad-name", "bad-nul", "bad-type", "bad-table"] {
        assert!(
            run.stderr.contains(&format!("{broken}/service.toml")),
            "{run}"
        );
    }
    for (what, text) in [("log", &run.stderr), ("events", &events)] {
        assert!(!text.contains(&secret), "a secret in the {what}:\n{text}");
        assert!(
            !text.contains(&number),
            "a secret number in the {what}:\n{text}"
        );
    }
}

fn pidvisor_restarted(dir: &TempDir) -> bool {
    let events = crate::support::read_events(dir);
    crate::support::events_of(&events, "web", "started").len() >= 2
}
