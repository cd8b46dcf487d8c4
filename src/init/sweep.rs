//! The shutdown sweep: signals every process that pidvisor is responsible for.
//!
//! As PID 1 of a namespace that is every other process, and `kill(-1, sig)` reaches them
//! all in one call. As a mere child subreaper (not PID 1) `kill(-1)` would hit every
//! process of the user on the host, so the sweep walks `/proc` instead and signals only
//! pidvisor's own descendants.
//!
//! Either way the sweep is skipped when pidvisor has no child at all, the usual case once
//! the main command and the services are gone: every process it could wait for is its
//! child (orphans are re-parented to it), so there is nothing to give a grace period to,
//! and pidvisor exits at once. That matters because both forms cost time in proportion to
//! the whole *host*: `kill(-1)` walks every task of the machine, not just the namespace's
//! (it was a third of pidvisor's CPU time in `pidvisor true` on a busy 2-core host), and
//! the `/proc` walk reads every process. (A process that entered the namespace from
//! outside, e.g. `docker exec`, is not a child: it would get SIGTERM and, a moment later
//! when PID 1 exits, the kernel's SIGKILL, so skipping the SIGTERM changes nothing.)

use std::collections::HashMap;
use std::fs;
use std::io;

use tracing::warn;

use crate::init::signals;

/// Who the sweep reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// PID 1: every process in the namespace.
    Namespace,
    /// Subreaper: the descendants of this pid.
    DescendantsOf(i32),
}

/// Sends `signo` to every process in `scope`. Processes that vanish meanwhile are fine.
/// Does nothing when pidvisor has no child (see the module docs).
pub fn signal_all(scope: Scope, signo: libc::c_int) {
    if !has_children() {
        return;
    }
    match scope {
        Scope::Namespace => {
            if let Err(err) = signals::send(-1, signo)
                && err.raw_os_error() != Some(libc::ESRCH)
            {
                warn!("kill(-1, {}): {err}", signals::name(signo));
            }
        }
        Scope::DescendantsOf(root) => match descendants(root) {
            Ok(pids) => {
                for pid in pids {
                    // ESRCH: it exited between the scan and now, which is what we want.
                    let _ = signals::send(pid, signo);
                }
            }
            Err(err) => warn!("cannot list the processes under /proc: {err}"),
        },
    }
}

/// True unless the kernel says this process has no child at all (a zombie counts).
fn has_children() -> bool {
    // SAFETY: an all-zero siginfo_t is a valid value for waitid to overwrite.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is valid for writes; WNOWAIT leaves any zombie for the reaper and
    // WNOHANG never blocks. __WALL counts children of every kind.
    let rc = unsafe {
        libc::waitid(
            libc::P_ALL,
            0,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT | libc::__WALL,
        )
    };
    !(rc == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD))
}

/// Every live descendant of `root`, found from the parent pids in `/proc/<pid>/stat`.
fn descendants(root: i32) -> io::Result<Vec<i32>> {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for entry in fs::read_dir("/proc")? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        // A process may exit while we read; skip it.
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if let Some(ppid) = parent_pid(&stat) {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut found = Vec::new();
    let mut frontier = vec![root];
    while let Some(pid) = frontier.pop() {
        if let Some(kids) = children.get(&pid) {
            found.extend_from_slice(kids);
            frontier.extend_from_slice(kids);
        }
    }
    Ok(found)
}

/// The parent pid from a `/proc/<pid>/stat` line. The command name in parentheses may hold
/// spaces and parentheses itself, so fields are counted after its *last* `)`.
fn parent_pid(stat: &str) -> Option<i32> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_pid_survives_odd_command_names() {
        assert_eq!(parent_pid("42 (sleep) S 7 42 42 0"), Some(7));
        assert_eq!(parent_pid("42 (a b) c) S 9 42 42 0"), Some(9));
        assert_eq!(parent_pid("garbage"), None);
    }

    #[test]
    fn a_running_child_or_an_unreaped_zombie_counts_as_a_child() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        assert!(has_children());
        child.kill().expect("kill");
        // Killed but not yet waited for: a zombie, still a child.
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(has_children());
        let _ = child.wait();
    }

    #[test]
    fn finds_own_children_and_grandchildren() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & wait"])
            .spawn()
            .expect("spawn sh");
        let me = std::process::id() as i32;
        let sh = child.id() as i32;
        // The grandchild appears once sh has forked it; wait for that condition.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let found = loop {
            let found = descendants(me).expect("read /proc");
            if found.len() >= 2 || std::time::Instant::now() > deadline {
                break found;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        signal_all(Scope::DescendantsOf(sh), libc::SIGKILL);
        let _ = child.kill();
        let _ = child.wait();
        assert!(found.contains(&sh), "{found:?} lacks sh {sh}");
        assert!(found.len() >= 2, "{found:?} lacks the grandchild");
    }
}
