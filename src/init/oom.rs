//! The OOM killer's count for pidvisor's own cgroup: how many processes in it (and below
//! it) the kernel has killed for want of memory.
//!
//! cgroup v2: `oom_kill` in `memory.events` (hierarchical); cgroup v1: `oom_kill` in the
//! memory controller's `memory.oom_control` (Linux 4.13 and later). The cgroup is the one
//! `/proc/self/cgroup` names, looked up under `/sys/fs/cgroup`, or the mount's root when
//! that path is not there (a container that sees only its own cgroup). Read-only access is
//! all it needs; where nothing can be read the answer is `None`, and nothing is claimed.
//!
//! The file is found and opened once, at start-up ([`OomCounter::open`]): a container's
//! PID 1 stays in the cgroup its runtime started it in. Each count is then one `pread` at
//! offset 0, which makes the kernel write the file anew (it used to be two opens and a
//! dozen reads). It is read on demand (at a start, at a SIGKILL exit), never polled.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The open file that holds the count, if one could be read.
pub struct OomCounter {
    file: Option<File>,
}

impl OomCounter {
    /// Finds the first of the cgroup's files that holds a count, and keeps it open.
    pub fn open() -> OomCounter {
        // Room for the whole file at once: read_to_string would start with 32 bytes.
        let mut cgroups = String::with_capacity(4096);
        let file = File::open("/proc/self/cgroup")
            .and_then(|mut file| file.read_to_string(&mut cgroups))
            .ok()
            .and_then(|_| {
                candidates(Path::new("/sys/fs/cgroup"), &cgroups)
                    .iter()
                    .filter_map(|path| File::open(path).ok())
                    .find(|file| read_count(file).is_some())
            });
        OomCounter { file }
    }

    /// The count now, if the file can be read.
    pub fn count(&self) -> Option<u64> {
        self.file.as_ref().and_then(read_count)
    }
}

/// The files that may hold the count, best first, from `/proc/self/cgroup`'s lines
/// (`ID:CONTROLLERS:PATH`; v2 is `0::PATH`).
fn candidates(root: &Path, cgroups: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for line in cgroups.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let path = path.trim_start_matches('/');
        let (mount, file) = if id == "0" && controllers.is_empty() {
            (root.to_owned(), "memory.events")
        } else if controllers.split(',').any(|c| c == "memory") {
            (root.join("memory"), "memory.oom_control")
        } else {
            continue;
        };
        files.push(mount.join(path).join(file));
        files.push(mount.join(file));
    }
    files
}

/// `oom_kill N` from one of those files, read whole from its start. Both are a few lines
/// long (about 100 bytes), well within the buffer.
fn read_count(file: &File) -> Option<u64> {
    let mut buffer = [0u8; 1024];
    let len = file.read_at(&mut buffer, 0).ok()?;
    let text = std::str::from_utf8(&buffer[..len]).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn finds_the_v2_and_v1_files_of_its_cgroup_then_the_mounts_root() {
        let root = Path::new("/sys/fs/cgroup");
        let v2 = candidates(root, "0::/system.slice/app.service\n");
        assert_eq!(
            v2,
            [
                root.join("system.slice/app.service/memory.events"),
                root.join("memory.events")
            ]
        );
        let v1 = candidates(
            root,
            "9:name=systemd:/\n4:memory:/docker/abc\n3:cpu,cpuacct:/\n",
        );
        assert_eq!(
            v1,
            [
                root.join("memory/docker/abc/memory.oom_control"),
                root.join("memory/memory.oom_control")
            ]
        );
        assert!(candidates(root, "garbage\n5:pids:/\n").is_empty());
    }

    #[test]
    fn reads_the_oom_kill_line_of_either_file() {
        let dir = std::env::temp_dir().join(format!("pidvisor-oom-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("dir");
        let events = dir.join("memory.events");
        fs::write(
            &events,
            "low 0\nhigh 0\nmax 3\noom 2\noom_kill 2\noom_group_kill 0\n",
        )
        .expect("write");
        let open = |path: &Path| File::open(path).expect("open");
        assert_eq!(read_count(&open(&events)), Some(2));
        let control = dir.join("memory.oom_control");
        fs::write(&control, "oom_kill_disable 0\nunder_oom 0\noom_kill 7\n").expect("write");
        let kept = open(&control);
        assert_eq!(read_count(&kept), Some(7));
        fs::write(&control, "oom_kill_disable 0\nunder_oom 0\noom_kill 8\n").expect("write");
        assert_eq!(read_count(&kept), Some(8), "read again from the start");
        fs::write(&control, "oom_kill_disable 0\n").expect("write");
        assert_eq!(read_count(&kept), None, "an old kernel without the count");
        fs::remove_dir_all(&dir).expect("cleanup");
    }
}
