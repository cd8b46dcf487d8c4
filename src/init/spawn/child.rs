//! The child's side of a spawn: what runs between `fork` and `exec`.
//!
//! Everything here was prepared by the parent before the fork ([`Plan`]): no allocation,
//! no lock, only async-signal-safe system calls. A step that fails, or the `exec` itself,
//! writes its errno (4 bytes, atomically) into the close-on-exec report pipe and exits
//! with 127 (not found) or 126 (anything else); a successful `exec` closes the pipe,
//! which the parent reads as end-of-file.

use std::ffi::CStr;
use std::io;

use crate::init::signals::ChildSignalReset;

unsafe extern "C" {
    /// The C library's environment, which `execvp` passes on and takes PATH from.
    static mut environ: *const *const libc::c_char;
}

/// What the child does, all of it built before the fork.
pub(super) struct Plan<'a> {
    pub program: &'a CStr,
    /// Null-terminated, pointing into the parent's `CString`s.
    pub argv: &'a [*const libc::c_char],
    /// Null-terminated `KEY=VALUE` pointers; `None` keeps pidvisor's environment.
    pub envp: Option<&'a [*const libc::c_char]>,
    pub cwd: Option<&'a CStr>,
    /// The descriptors to make the child's 0, 1 and 2 (`None`: inherited).
    pub stdio: [Option<i32>; 3],
    /// `(target, source)`: see `occupy` in the parent.
    pub extra_fd: Option<(i32, i32)>,
    pub take_terminal: bool,
    pub cgroup: Option<&'a CStr>,
    pub umask: Option<u32>,
    pub ids: Option<(u32, u32, &'a [libc::gid_t])>,
    pub no_new_privileges: bool,
    pub signals: ChildSignalReset,
}

/// Sets the child up as planned and execs; never returns. `report` is the write end of
/// the close-on-exec report pipe; `in_cgroup`: it was created in its cgroup already.
///
/// # Safety
/// Only to be called in a freshly forked child, with a `plan` whose pointers are valid.
pub(super) unsafe fn run(plan: &Plan<'_>, report: i32, in_cgroup: bool) -> ! {
    let errno = match prepare(plan, in_cgroup) {
        // SAFETY: program, argv and envp are valid, null-terminated C strings and arrays;
        // this process has one thread and is about to exec or exit.
        Ok(()) => unsafe {
            // The child's own environment, which is also where execvp looks up PATH.
            if let Some(envp) = plan.envp {
                environ = envp.as_ptr();
            }
            libc::execvp(plan.program.as_ptr(), plan.argv.as_ptr());
            io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EINVAL)
        },
        Err(err) => err.raw_os_error().unwrap_or(libc::EINVAL),
    };
    let bytes = errno.to_ne_bytes();
    // SAFETY: write and _exit are async-signal-safe; the buffer is 4 valid bytes. A failed
    // write leaves the parent with end-of-file, and the exit code still tells.
    unsafe {
        libc::write(report, bytes.as_ptr().cast(), bytes.len());
        libc::_exit(super::exit_code_for_errno(errno))
    }
}

fn prepare(plan: &Plan<'_>, in_cgroup: bool) -> io::Result<()> {
    for (target, source) in (0..).zip(plan.stdio) {
        if let Some(source) = source {
            super::pass_descriptor(source, target)?;
        }
    }
    if let Some(cwd) = plan.cwd {
        // SAFETY: a valid C string.
        super::check(unsafe { libc::chdir(cwd.as_ptr()) })?;
    }
    // SAFETY: setpgid on ourselves; the parent does the same, whichever comes first.
    super::check(unsafe { libc::setpgid(0, 0) })?;
    // Rust's runtime ignores SIGPIPE in pidvisor; children get the default back (the
    // signals pidvisor itself ignores are restored to what it found, below).
    // SAFETY: sets a disposition, no handler involved.
    if unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) } == libc::SIG_ERR {
        return Err(io::Error::last_os_error());
    }
    if let Some(procs) = plan.cgroup.filter(|_| !in_cgroup) {
        crate::init::cgroup::join(procs)?;
    }
    if plan.take_terminal {
        // Fails harmlessly (ENOTTY) when the terminal is not our controlling one.
        // SAFETY: tcsetpgrp and getpid have no memory-safety preconditions.
        unsafe { libc::tcsetpgrp(libc::STDIN_FILENO, libc::getpid()) };
    }
    if let Some((target, source)) = plan.extra_fd {
        super::pass_descriptor(source, target)?;
    }
    if let Some(mask) = plan.umask {
        // SAFETY: umask has no preconditions.
        unsafe { libc::umask(mask as libc::mode_t) };
    }
    if let Some((uid, gid, groups)) = plan.ids {
        // SAFETY: `groups` is a valid slice of gid_t; the others take plain ids.
        unsafe {
            super::check(libc::setgroups(groups.len(), groups.as_ptr()))?;
            super::check(libc::setgid(gid))?;
            super::check(libc::setuid(uid))?;
        }
    }
    if plan.no_new_privileges {
        // SAFETY: prctl with integer arguments only.
        super::check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })?;
    }
    crate::init::limits::restore_for_child()?;
    plan.signals.apply()
}
