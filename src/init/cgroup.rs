//! A cgroup per service, where the kernel lets pidvisor make one: the way to find and
//! end processes that left their service's process group (`setsid`, a daemon's double
//! fork), which a process group cannot follow.
//!
//! pidvisor looks for the cgroup v2 hierarchy it is in (a `cgroup2` mount in
//! `/proc/self/mountinfo` and its own path in `/proc/self/cgroup`), and makes a folder
//! `pidvisor-NAMESPACE-PID` below its own cgroup, with one sub-group per service. A
//! service's `run` is created in its group or joins it before its exec (`spawn`), so that everything
//! it starts is in it, wherever it goes. Stopping signals every process in the group,
//! SIGKILL uses `cgroup.kill` (or kills each pid of `cgroup.procs` where the kernel is
//! older than 5.14), and a service is down only once its group is empty (`populated 0`
//! in `cgroup.events`). No controller is enabled: this only groups. Each group's folder
//! stays open where descriptors allow, so that starting and stopping a service does not
//! walk the folder's whole path each time.
//!
//! Where the hierarchy is read-only (Docker's default), absent, or cgroup v1 only,
//! [`Cgroups::create`] says why and pidvisor uses process groups alone: a process that
//! leaves its service's group then runs on after the service stops or restarts, until
//! the final sweep at the container's end.

use std::ffi::{CStr, CString, OsStr};
use std::fs;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::init::limits;

/// The folder pidvisor made in its cgroup for its services' groups. Removed (with the
/// groups, empty by then) when dropped.
pub struct Cgroups {
    root: PathBuf,
    /// `root`, opened: the groups are made and opened in it by name.
    root_folder: OwnedFd,
}

impl Cgroups {
    /// Makes the folder for the services' groups, or says why it cannot. Its name holds
    /// pidvisor's PID namespace and pid, which no other live pidvisor shares; a folder of
    /// that name left by a pidvisor killed with SIGKILL (whose namespace id the kernel
    /// has since reused) is removed, once nothing runs in it, and made anew: its groups
    /// may belong to another user, whose `cgroup.procs` this pidvisor could not write.
    pub fn create() -> Result<Cgroups, String> {
        let own = own_cgroup_dir()?;
        let namespace = fs::metadata("/proc/self/ns/pid")
            .map(|meta| meta.ino())
            .map_err(|e| format!("cannot read /proc/self/ns/pid ({e})"))?;
        let dir = own.join(format!("pidvisor-{namespace}-{}", std::process::id()));
        let cannot_make = |err: io::Error| format!("cannot make {} ({err})", dir.display());
        match fs::create_dir(&dir) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                if populated(&dir) {
                    return Err(format!("{} is in use", dir.display()));
                }
                remove_groups(&dir).map_err(|err| {
                    format!(
                        "cannot remove {}, left by an earlier pidvisor ({err})",
                        dir.display()
                    )
                })?;
                fs::create_dir(&dir).map_err(cannot_make)?;
            }
            Err(err) => return Err(cannot_make(err)),
        }
        let root_folder = open_in(None, dir.as_os_str(), FOLDER)
            .map_err(|err| format!("cannot open {} ({err})", dir.display()))?;
        Ok(Cgroups {
            root: dir,
            root_folder,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Makes the group of service `name` (a logger's name has a `/`: it becomes `.`). A
    /// name already taken (a service named `web.log` beside the logger of `web`, or named
    /// like one of the kernel's files) is an error: two services never share a group.
    pub fn group(&self, name: &str) -> io::Result<ServiceGroup> {
        let file_name = name.replace('/', ".");
        let c_name = CString::new(file_name.as_str()).map_err(io::Error::other)?;
        // SAFETY: a valid C string, relative to a folder this struct holds open.
        if unsafe { libc::mkdirat(self.root_folder.as_raw_fd(), c_name.as_ptr(), 0o777) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let dir = self.root.join(&file_name);
        let procs = CString::new(dir.join("cgroup.procs").as_os_str().as_bytes())
            .map_err(io::Error::other)?;
        // Where it cannot be kept open (descriptors short), the group is reached by its
        // path, as before.
        let folder = open_in(
            Some(self.root_folder.as_fd()),
            OsStr::new(&file_name),
            FOLDER,
        )
        .ok()
        .filter(|folder| limits::room_to_keep(folder.as_raw_fd()));
        Ok(ServiceGroup { dir, procs, folder })
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        let _ = remove_groups(&self.root);
    }
}

/// Removes the empty cgroup at `dir` and the groups in it (a cgroup's own files go with
/// its folder).
fn remove_groups(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)?.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            fs::remove_dir(entry.path())?;
        }
    }
    fs::remove_dir(dir)
}

/// One service's cgroup.
pub struct ServiceGroup {
    dir: PathBuf,
    /// `cgroup.procs`, ready for a child to join through.
    procs: CString,
    /// `dir`, kept open where descriptors allow: a child is created in the group through
    /// it, and the group's files are opened in it by name, instead of a walk of the whole
    /// path each time (a start opened the folder anew: 9-14 µs with a hundred services
    /// starting, in a `perf` profile).
    folder: Option<OwnedFd>,
}

impl ServiceGroup {
    /// The `cgroup.procs` file a child writes to in order to join.
    pub fn procs_file(&self) -> &CStr {
        &self.procs
    }

    /// The group's folder, if it is kept open.
    pub fn folder(&self) -> Option<BorrowedFd<'_>> {
        self.folder.as_ref().map(AsFd::as_fd)
    }

    /// The group's folder opened anew (where it is not kept open).
    pub fn open_folder(&self) -> io::Result<OwnedFd> {
        open_in(None, self.dir.as_os_str(), FOLDER)
    }

    /// Whether any process is left in the group. An unreadable `cgroup.events` counts as
    /// empty: the process group still decides then.
    pub fn is_populated(&self) -> bool {
        self.read("cgroup.events")
            .is_ok_and(|events| says_populated(&events))
    }

    /// Sends `signo` to every process in the group but those in process group `pgid`
    /// (which the caller signals as a group, and which should hear it once); returns how
    /// many it reached. `pgid` 0 excludes nothing.
    pub fn signal_outside(&self, pgid: i32, signo: libc::c_int) -> usize {
        self.pids()
            .into_iter()
            .filter(|&pid| {
                // SAFETY: getpgid and kill have no memory-safety preconditions.
                unsafe { libc::getpgid(pid) != pgid && libc::kill(pid, signo) == 0 }
            })
            .count()
    }

    /// SIGKILL to every process in the group, at once with `cgroup.kill` where the kernel
    /// has it; else pid by pid (a process forked meanwhile is caught by the next call:
    /// the service stays down until the group is empty).
    pub fn kill_all(&self) {
        let killed = self
            .open("cgroup.kill", libc::O_WRONLY)
            .and_then(|mut file| file.write_all(b"1"));
        if killed.is_err() {
            self.signal_outside(0, libc::SIGKILL);
        }
    }

    fn pids(&self) -> Vec<i32> {
        self.read("cgroup.procs")
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.trim().parse().ok())
            .collect()
    }

    fn read(&self, file: &str) -> io::Result<String> {
        io::read_to_string(self.open(file, libc::O_RDONLY)?)
    }

    /// One of the group's files: in its folder kept open, else by its path.
    fn open(&self, file: &str, flags: libc::c_int) -> io::Result<fs::File> {
        match &self.folder {
            Some(folder) => open_in(Some(folder.as_fd()), OsStr::new(file), flags),
            None => open_in(None, self.dir.join(file).as_os_str(), flags),
        }
        .map(fs::File::from)
    }
}

/// Whether any process is in the cgroup at `dir` or below (`populated 1` in its
/// `cgroup.events`); false if that cannot be read.
fn populated(dir: &Path) -> bool {
    fs::read_to_string(dir.join("cgroup.events")).is_ok_and(|events| says_populated(&events))
}

fn says_populated(events: &str) -> bool {
    events.lines().any(|line| line == "populated 1")
}

/// How a group's folder is opened: for `clone3` and `openat` only.
const FOLDER: libc::c_int = libc::O_PATH | libc::O_DIRECTORY;

/// `name` opened with `flags` (and close-on-exec) in the folder `at`, or where it leads
/// from the working directory.
fn open_in(at: Option<BorrowedFd<'_>>, name: &OsStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    let name = CString::new(name.as_bytes()).map_err(io::Error::other)?;
    let at = at.map_or(libc::AT_FDCWD, |folder| folder.as_raw_fd());
    // SAFETY: a valid C string and a folder descriptor (or AT_FDCWD); the descriptor
    // returned gets one owner below.
    let fd = unsafe { libc::openat(at, name.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: openat just returned it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The folder of pidvisor's own cgroup in a mounted cgroup v2 hierarchy.
fn own_cgroup_dir() -> Result<PathBuf, String> {
    let cgroup = fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| format!("cannot read /proc/self/cgroup ({e})"))?;
    let own = own_v2_path(&cgroup)
        .ok_or("no cgroup v2 hierarchy (/proc/self/cgroup has no 0:: line: cgroup v1 only)")?;
    let mountinfo = fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("cannot read /proc/self/mountinfo ({e})"))?;
    v2_dir(&mountinfo, own)
        .ok_or_else(|| format!("the cgroup v2 hierarchy of {own} is not mounted"))
}

/// The path in the `0::PATH` line of `/proc/self/cgroup`.
fn own_v2_path(cgroup: &str) -> Option<&str> {
    cgroup.lines().find_map(|line| line.strip_prefix("0::"))
}

/// Where cgroup `path` is, given `/proc/self/mountinfo`: the first `cgroup2` mount whose
/// root contains it.
fn v2_dir(mountinfo: &str, path: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (before, after) = line.split_once(" - ")?;
        if after.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        let fields: Vec<&str> = before.split_whitespace().collect();
        let (root, mount_point) = (*fields.get(3)?, *fields.get(4)?);
        let below = if root == "/" {
            path
        } else {
            let rest = path.strip_prefix(root)?;
            if !(rest.is_empty() || rest.starts_with('/')) {
                return None;
            }
            rest
        };
        Some(Path::new(mount_point).join(below.trim_start_matches('/')))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
25 30 0:23 / /sys ro,nosuid - sysfs sysfs rw
31 25 0:26 / /sys/fs/cgroup/unified rw,relatime shared:10 - cgroup2 cgroup2 rw
32 25 0:27 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
";

    #[test]
    fn finds_the_v2_line_of_proc_self_cgroup() {
        let text = "4:memory:/docker/abc\n0::/system.slice/x.service\n";
        assert_eq!(own_v2_path(text), Some("/system.slice/x.service"));
        assert_eq!(own_v2_path("4:memory:/docker/abc\n"), None);
    }

    #[test]
    fn places_the_cgroup_below_the_cgroup2_mount() {
        assert_eq!(
            v2_dir(HYBRID, "/"),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        assert_eq!(
            v2_dir(HYBRID, "/a/b"),
            Some(PathBuf::from("/sys/fs/cgroup/unified/a/b"))
        );
    }

    #[test]
    fn a_mount_of_a_sub_tree_holds_only_what_is_below_its_root() {
        let bind = "40 1 0:26 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            v2_dir(bind, "/docker/abc/x"),
            Some(PathBuf::from("/sys/fs/cgroup/x"))
        );
        assert_eq!(v2_dir(bind, "/docker/abcdef"), None);
        assert_eq!(v2_dir(bind, "/other"), None);
        assert_eq!(v2_dir(HYBRID.lines().next().unwrap_or_default(), "/"), None);
    }
}
