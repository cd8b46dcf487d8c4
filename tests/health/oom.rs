//! OOM kills: a service that the kernel's OOM killer kills inside pidvisor's cgroup is
//! reported as `oom_killed` (event, status, log), and a critical one ends the container
//! with 137. Needs root and a memory cgroup the test can create (cgroup v1's memory
//! controller, or v2 with the memory controller enabled); otherwise it says "skipped".

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::harness::{PATIENCE, TempDir, poll_until, python};
use crate::support::{ctl, events_of, read_events, service, start_as, status, wait_for_event};

/// The memory limit of the test's cgroup.
const LIMIT: &str = "67108864";

/// A memory-limited cgroup, removed at the end.
struct Cgroup {
    dir: PathBuf,
}

impl Cgroup {
    /// Makes one under the test's own memory cgroup, or says why it cannot.
    fn create(name: &str) -> Result<Cgroup, String> {
        let own = fs::read_to_string("/proc/self/cgroup")
            .map_err(|e| format!("/proc/self/cgroup: {e}"))?;
        let mut dir = None;
        for line in own.lines() {
            let mut fields = line.splitn(3, ':');
            let (_, controllers, path) = (
                fields.next(),
                fields.next().unwrap_or(""),
                fields.next().unwrap_or(""),
            );
            let path = path.trim_start_matches('/');
            if controllers.split(',').any(|c| c == "memory") {
                dir = Some(Path::new("/sys/fs/cgroup/memory").join(path));
            } else if controllers.is_empty() && line.starts_with("0:") {
                let controllers =
                    fs::read_to_string("/sys/fs/cgroup/cgroup.subtree_control").unwrap_or_default();
                if controllers.split_whitespace().any(|c| c == "memory") && dir.is_none() {
                    dir = Some(Path::new("/sys/fs/cgroup").join(path));
                }
            }
        }
        let parent = dir.ok_or("no memory cgroup controller available to this test")?;
        let dir = parent.join(format!("{name}-{}", std::process::id()));
        fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let cgroup = Cgroup { dir };
        let v1 = cgroup.dir.join("memory.limit_in_bytes").exists();
        let limits: &[&str] = if v1 {
            &["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]
        } else {
            &["memory.max", "memory.swap.max"]
        };
        for (i, file) in limits.iter().enumerate() {
            let path = cgroup.dir.join(file);
            let value = if !v1 && i == 1 { "0" } else { LIMIT };
            match fs::write(&path, value) {
                Ok(()) => {}
                // No swap accounting: fine when there is no swap to escape to.
                Err(_) if i == 1 => {}
                Err(e) => return Err(format!("cannot limit {}: {e}", path.display())),
            }
        }
        Ok(cgroup)
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // Its processes are gone with the namespace; the kernel may take a moment.
        let deadline = std::time::Instant::now() + PATIENCE;
        while fs::remove_dir(&self.dir).is_err() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

/// Allocates and touches memory until it is killed.
const HOG: &str = "chunks = []\nwhile True:\n    chunks.append(b'\\x01' * (1 << 20))\n";

#[test]
fn a_service_killed_by_the_oom_killer_is_reported_and_a_critical_one_ends_the_container_with_137() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to create a memory cgroup");
        return;
    }
    let cgroup = match Cgroup::create("pidvisor-oom") {
        Ok(cgroup) => cgroup,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let dir = TempDir::new("oom");
    service(&dir, "web", "exec sleep 1000", "");
    for (name, toml) in [
        ("hog", "restart = \"never\"\n"),
        ("vital", "restart = \"never\"\ncritical = true\n"),
    ] {
        service(
            &dir,
            name,
            &format!("exec {} -c \"$(cat hog.py)\"", python()),
            toml,
        );
        let folder = dir.path().join("services.d").join(name);
        fs::write(folder.join("hog.py"), HOG).expect("hog.py");
        fs::write(folder.join("down"), "").expect("down");
    }
    let pidvisor = start_as(&dir, &[], |launch| launch.in_cgroup(&cgroup.dir));

    // A SIGKILL that is not the OOM killer's is not called one.
    ctl(&dir, &["signal", "web", "KILL"]).expect(0);
    wait_for_event(&dir, "web was killed", |e| {
        e["service"] == "web" && e["event"] == "exited"
    });
    let events = read_events(&dir);
    let killed = events_of(&events, "web", "exited")[0];
    assert_eq!(killed["signal"], "SIGKILL");
    assert_eq!(killed.get("oom_killed"), None, "{killed}");

    ctl(&dir, &["start", "hog"]).expect(0);
    wait_for_event(&dir, "the hog was killed", |e| {
        e["service"] == "hog" && e["event"] == "exited"
    });
    let events = read_events(&dir);
    let hog = events_of(&events, "hog", "exited")[0];
    assert_eq!(
        (&hog["signal"], &hog["oom_killed"]),
        (&Value::from("SIGKILL"), &Value::Bool(true)),
        "{hog}"
    );
    assert_eq!(status(&dir, "hog")["last_exit"]["oom_killed"], true);
    let mut pidvisor = pidvisor;
    pidvisor.wait_for_log("hog: killed by the OOM killer");

    // It is killed while starting or right after: the reply does not matter.
    let _ = ctl(&dir, &["start", "vital"]);
    let run = pidvisor.finish(PATIENCE);
    run.assert_code(137);
    assert!(
        run.stderr.contains("vital: critical service killed by the OOM killer: shutting the container down (exit code 137)"),
        "{run}"
    );
    poll_until(PATIENCE, "the cgroup is empty", || {
        let procs = fs::read_to_string(cgroup.dir.join("cgroup.procs")).unwrap_or_default();
        if procs.trim().is_empty() {
            Ok(())
        } else {
            Err(procs)
        }
    });
}
