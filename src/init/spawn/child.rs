//! The child's side of a spawn: what runs between `clone` (or `fork`) and `exec`.
//!
//! Everything here was prepared by the parent before the child was started
//! ([`Prepared`]): no allocation, no lock, and only the system calls of `raw`, which
//! write no `errno`, since the child may share pidvisor's memory (see `fork`). A step
//! that fails, or the `exec` itself, writes its errno (4 bytes, atomically) into the
//! close-on-exec report pipe and exits with 127 (not found) or 126 (anything else); a
//! successful `exec` closes the pipe, which the parent reads as end-of-file.

use std::ffi::CString;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};

use super::environment::Variable;
use crate::init::raw::{self, result};

/// Everything a child does, made and owned by the parent, which keeps it unchanged
/// until the child has exec'd or exited (the child may be reading it from the parent's
/// memory all that time).
pub(super) struct Prepared {
    /// The files to try `execve` on in turn: the program itself when it has a `/`, else
    /// one per folder of the child's PATH, as `execvp` would.
    pub candidates: Vec<CString>,
    /// Null-terminated, pointing into `_args`.
    pub argv: Vec<*const libc::c_char>,
    pub _args: Vec<CString>,
    /// Null-terminated `KEY=VALUE` pointers, into `_added` and `_inherited`'s strings.
    pub envp: Vec<*const libc::c_char>,
    pub _added: Vec<Variable>,
    pub _inherited: Option<Rc<[Variable]>>,
    pub cwd: Option<CString>,
    /// The descriptors to make the child's 0, 1 and 2 (`None`: inherited).
    pub stdio: [Option<i32>; 3],
    /// `(target, source)`: see `occupy` in the parent.
    pub extra_fd: Option<(i32, i32)>,
    pub take_terminal: bool,
    /// The `cgroup.procs` to write to, when the child was not created in its cgroup.
    pub join_cgroup: Option<CString>,
    pub umask: Option<u32>,
    /// uid and gid to switch to, with `groups`.
    pub ids: Option<(u32, u32)>,
    pub groups: Vec<libc::gid_t>,
    pub no_new_privileges: bool,
    /// Signal dispositions to set (handler `SIG_DFL` or `SIG_IGN`) before the mask is
    /// emptied.
    pub dispositions: [(libc::c_int, usize); 3],
    /// The open-files limit to give the child, if it differs from pidvisor's.
    pub open_files: Option<libc::rlimit>,
    /// The write end of the report pipe.
    pub report: i32,
    /// Set when the child shares pidvisor's descriptor table (see `low_slots`): the first
    /// descriptor number it does not keep as it makes a table of its own, its first act.
    pub unshare_below: Option<i32>,
    /// 1 while the child may still use pidvisor's descriptor table: the child clears it
    /// once its table is its own, and the kernel when it execs or dies first
    /// (`CLONE_CHILD_CLEARTID`); both wake a futex waiter.
    pub sharing: AtomicU32,
}

/// The entry point of a child started with `CLONE_VM`: `prepared` is a [`Prepared`].
///
/// # Safety
/// Only as the entry of such a child, with a `Prepared` that outlives it (see above).
pub(super) unsafe extern "C" fn entry(prepared: *const u8) -> ! {
    // SAFETY: the caller's contract.
    unsafe { run(&*prepared.cast::<Prepared>()) }
}

/// Sets the child up as prepared and execs; never returns.
pub(super) fn run(prepared: &Prepared) -> ! {
    let errno = match set_up(prepared) {
        Ok(()) => exec(prepared),
        Err(errno) => errno,
    };
    let bytes = errno.to_ne_bytes();
    // SAFETY: write gets 4 valid bytes; exit_group ends the process. A failed write
    // leaves the parent with end-of-file, and the exit code still tells.
    unsafe {
        sys(
            libc::SYS_write,
            [prepared.report as usize, bytes.as_ptr() as usize, 4],
        );
        raw::syscall(
            libc::SYS_exit_group,
            [super::exit_code_for_errno(errno) as usize, 0, 0, 0, 0],
        );
    }
    // exit_group does not return; should it ever, the child must not go on.
    loop {
        std::hint::spin_loop();
    }
}

/// `execve` on each candidate in turn, as `execvp` does: a missing file or folder moves
/// on to the next, a permission error is remembered, any other error ends the search.
/// Returns the errno to report.
fn exec(prepared: &Prepared) -> i32 {
    let mut denied = false;
    for file in &prepared.candidates {
        let args = [
            file.as_ptr() as usize,
            prepared.argv.as_ptr() as usize,
            prepared.envp.as_ptr() as usize,
        ];
        // SAFETY: a C string and two null-terminated arrays of C strings.
        match result(unsafe { sys(libc::SYS_execve, args) }) {
            Ok(_) => return libc::EINVAL, // execve does not return on success
            Err(libc::ENOENT | libc::ENOTDIR) => {}
            Err(libc::EACCES) => denied = true,
            Err(errno) => return errno,
        }
    }
    if denied { libc::EACCES } else { libc::ENOENT }
}

fn set_up(prepared: &Prepared) -> Result<(), i32> {
    if let Some(first) = prepared.unshare_below {
        own_table(first)?;
        prepared.sharing.store(0, Ordering::Release);
        // SAFETY: a futex wake on a word of the memory shared with pidvisor (a shared
        // wake, as the kernel's: pidvisor's wait is not a private one).
        unsafe {
            sys(
                libc::SYS_futex,
                [
                    prepared.sharing.as_ptr() as usize,
                    libc::FUTEX_WAKE as usize,
                    1,
                ],
            )
        };
    }
    for (target, source) in (0..).zip(prepared.stdio) {
        if let Some(source) = source {
            pass_descriptor(source, target)?;
        }
    }
    if let Some(cwd) = &prepared.cwd {
        // SAFETY: a valid C string.
        result(unsafe { sys(libc::SYS_chdir, [cwd.as_ptr() as usize]) })?;
    }
    // SAFETY: setpgid(0, 0) on ourselves; the parent does the same, whichever comes first.
    result(unsafe { sys(libc::SYS_setpgid, [0, 0]) })?;
    if let Some(procs) = &prepared.join_cgroup {
        join(procs)?;
    }
    if prepared.take_terminal {
        // SAFETY: getpid has no arguments; the ioctl reads one pid_t. It fails harmlessly
        // (ENOTTY) when the terminal is not our controlling one.
        unsafe {
            let pid = sys(libc::SYS_getpid, []) as libc::pid_t;
            sys(
                libc::SYS_ioctl,
                [
                    0,
                    libc::TIOCSPGRP as usize,
                    &pid as *const libc::pid_t as usize,
                ],
            );
        }
    }
    if let Some((target, source)) = prepared.extra_fd {
        pass_descriptor(source, target)?;
    }
    if let Some(mask) = prepared.umask {
        // SAFETY: umask takes a plain value.
        unsafe { sys(libc::SYS_umask, [mask as usize]) };
    }
    if let Some((uid, gid)) = prepared.ids {
        let groups = &prepared.groups;
        // SAFETY: a valid array of gid_t and its length; the others take plain ids.
        unsafe {
            result(sys(
                libc::SYS_setgroups,
                [groups.len(), groups.as_ptr() as usize],
            ))?;
            result(sys(libc::SYS_setgid, [gid as usize]))?;
            result(sys(libc::SYS_setuid, [uid as usize]))?;
        }
    }
    if prepared.no_new_privileges {
        // SAFETY: prctl with integer arguments only.
        result(unsafe { sys(libc::SYS_prctl, [libc::PR_SET_NO_NEW_PRIVS as usize, 1]) })?;
    }
    if let Some(limit) = &prepared.open_files {
        let limit = limit as *const libc::rlimit as usize;
        // SAFETY: prlimit64 on ourselves reads one valid rlimit.
        result(unsafe {
            sys(
                libc::SYS_prlimit64,
                [0, libc::RLIMIT_NOFILE as usize, limit],
            )
        })?;
    }
    for (signo, handler) in prepared.dispositions {
        set_disposition(signo, handler)?;
    }
    let empty: u64 = 0;
    // SAFETY: rt_sigprocmask reads one 8-byte kernel sigset.
    result(unsafe {
        sys(
            libc::SYS_rt_sigprocmask,
            [
                libc::SIG_SETMASK as usize,
                &empty as *const u64 as usize,
                0,
                8,
            ],
        )
    })?;
    Ok(())
}

/// Gives this child a descriptor table of its own holding only the numbers below `first`
/// (`close_range` with `CLOSE_RANGE_UNSHARE`, Linux 5.9, which `low_slots` made sure
/// works), or else a whole copy (`unshare`). Until then, any change would be pidvisor's
/// too.
fn own_table(first: i32) -> Result<(), i32> {
    let unshare = super::low_slots::CLOSE_RANGE_UNSHARE as usize;
    // SAFETY: system calls on descriptor numbers; they touch no memory.
    let ret = unsafe {
        sys(
            libc::SYS_close_range,
            [first as usize, u32::MAX as usize, unshare],
        )
    };
    if result(ret).is_ok() {
        return Ok(());
    }
    // SAFETY: as above.
    result(unsafe { sys(libc::SYS_unshare, [libc::CLONE_FILES as usize]) }).map(|_| ())
}

/// Makes `source` the descriptor `target`, without close-on-exec.
fn pass_descriptor(source: i32, target: i32) -> Result<(), i32> {
    // SAFETY: fcntl and dup3 on descriptor numbers; they touch no memory.
    let ret = unsafe {
        if source == target {
            sys(
                libc::SYS_fcntl,
                [target as usize, libc::F_SETFD as usize, 0],
            )
        } else {
            sys(libc::SYS_dup3, [source as usize, target as usize, 0])
        }
    };
    result(ret).map(|_| ())
}

/// Moves this process into the cgroup whose `cgroup.procs` is `procs` (writes "0").
fn join(procs: &CString) -> Result<(), i32> {
    let flags = (libc::O_WRONLY | libc::O_CLOEXEC) as usize;
    // SAFETY: a valid C string; then one valid byte written to the descriptor just
    // opened, which is closed.
    unsafe {
        let fd = result(sys(
            libc::SYS_openat,
            [libc::AT_FDCWD as usize, procs.as_ptr() as usize, flags],
        ))? as usize;
        let written = sys(libc::SYS_write, [fd, b"0".as_ptr() as usize, 1]);
        sys(libc::SYS_close, [fd]);
        result(written).map(|_| ())
    }
}

/// The kernel's `struct sigaction` (not the C library's), with no handler function.
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

fn set_disposition(signo: libc::c_int, handler: usize) -> Result<(), i32> {
    let action = KernelSigaction {
        handler,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    let action = &action as *const KernelSigaction as usize;
    // SAFETY: rt_sigaction reads one valid kernel sigaction; the old one is not asked for.
    result(unsafe { sys(libc::SYS_rt_sigaction, [signo as usize, action, 0, 8]) }).map(|_| ())
}

/// A system call with up to five arguments.
///
/// # Safety
/// As for [`raw::syscall`].
unsafe fn sys<const N: usize>(n: libc::c_long, args: [usize; N]) -> isize {
    let mut all = [0usize; 5];
    all[..N].copy_from_slice(&args);
    // SAFETY: the caller's contract.
    unsafe { raw::syscall(n, all) }
}
