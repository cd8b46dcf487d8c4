//! The fork itself: straight into the child's cgroup where the kernel can do that.
//!
//! Writing `cgroup.procs` moves a running process, and every such move takes the cgroup
//! hierarchy's process-wide lock for writing, which also holds up every `fork` meanwhile:
//! with a cgroup per service, those moves were most of the cost of starting services.
//! `clone3` with `CLONE_INTO_CGROUP` (Linux 5.7) creates the child in its cgroup instead,
//! with no move. Where it is refused (an older kernel, a cgroup v1 folder, a permission
//! the move would also lack), a plain `fork` is made and the child joins by writing
//! `cgroup.procs` as before, so that any error is reported the same way.
//!
//! Not for a cgroup that `cgroup.kill` has emptied: Linux 6.14 and later (seen on 6.18)
//! compare the kill count of the parent's cgroup, read before the fork, with that of the
//! child's at its end, and SIGKILL the child when they differ, so every child created
//! into a cgroup killed before dies at birth. The caller says when a cgroup was killed.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// `CLONE_INTO_CGROUP` from linux/sched.h.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args` from linux/sched.h, up to `cgroup` (CLONE_ARGS_SIZE_VER2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Which side of the fork this is.
pub(super) enum Forked {
    /// The parent, with the child's pid.
    Parent(i32),
    /// The child, and whether it was born in its cgroup.
    Child { in_cgroup: bool },
}

/// Forks, into the cgroup whose `cgroup.procs` is `procs` if the kernel allows. `Err`:
/// the errno of a failed `fork`.
///
/// # Safety
/// As for `fork`: the child may only make async-signal-safe calls until it execs.
pub(super) unsafe fn fork(procs: Option<&CStr>) -> Result<Forked, i32> {
    if let Some(dir) = procs.and_then(open_folder) {
        let args = CloneArgs {
            flags: CLONE_INTO_CGROUP,
            exit_signal: libc::SIGCHLD as u64,
            cgroup: dir.as_raw_fd() as u64,
            ..CloneArgs::default()
        };
        // SAFETY: a valid clone_args of the size passed; without CLONE_VM the child gets
        // a copy of this process, as with fork.
        let pid = unsafe {
            libc::syscall(
                libc::SYS_clone3,
                &args as *const CloneArgs,
                std::mem::size_of::<CloneArgs>(),
            )
        };
        match pid {
            0 => return Ok(Forked::Child { in_cgroup: true }),
            pid if pid > 0 => return Ok(Forked::Parent(pid as i32)),
            _ => {} // Refused: a plain fork, and the child joins the usual way.
        }
    }
    // SAFETY: the caller's contract.
    match unsafe { libc::fork() } {
        0 => Ok(Forked::Child { in_cgroup: false }),
        pid if pid > 0 => Ok(Forked::Parent(pid)),
        _ => Err(std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EAGAIN)),
    }
}

/// The cgroup folder of a `cgroup.procs` path, opened for `clone3`.
fn open_folder(procs: &CStr) -> Option<OwnedFd> {
    let dir = Path::new(std::ffi::OsStr::from_bytes(procs.to_bytes())).parent()?;
    let dir = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: a valid C string; the descriptor gets one owner below.
    let fd = unsafe {
        libc::open(
            dir.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    // SAFETY: open just returned it.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}
