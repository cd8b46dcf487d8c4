//! Starting a child: fork, a clean process state, exec.
//!
//! Every child runs in its own process group (so that a signal can reach a shell wrapper
//! and everything it started). The main command, when stdin is a terminal, gets that
//! terminal's foreground, so job control and Ctrl-C work as if pidvisor were not there.
//! Signal state is reset as described in [`crate::init::signals`]. pidvisor's own file
//! descriptors are all close-on-exec; descriptors inherited from whoever started pidvisor
//! are passed through untouched, since they were meant for the container's programs.
//!
//! `std::process::Command` does the fork and exec: it reports a failed `exec` back to the
//! parent through a close-on-exec pipe, which is what turns "not found" and "permission
//! denied" into exit codes 127 and 126 with a clear message. Credentials, umask and the
//! readiness descriptor are set in the child between fork and exec, with async-signal-safe
//! calls only; the readiness descriptor's number is taken in pidvisor during the spawn,
//! so that nothing the spawn opens can land on it (see `occupy`).

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::init::shebang;
use crate::init::signals::ChildSignalReset;

/// A resolved user: ids, not names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The name as written in service.toml, for messages.
    pub user: String,
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups (from /etc/group), including `gid`.
    pub groups: Vec<u32>,
    /// The user's home directory, for `HOME`.
    pub home: Option<PathBuf>,
    /// Set `PR_SET_NO_NEW_PRIVS` before `exec`: neither a setuid program (`sudo`, `su`)
    /// nor file capabilities can give the child back what it gave up.
    pub no_new_privileges: bool,
}

/// Everything a child is started with, beyond its argv.
#[derive(Default)]
pub struct Setup<'a> {
    pub cwd: Option<&'a Path>,
    /// Added to the inherited environment.
    pub env: Vec<(&'a str, &'a str)>,
    pub credentials: Option<&'a Credentials>,
    pub umask: Option<u32>,
    pub stdin: Option<Stdio>,
    pub stdout: Option<Stdio>,
    pub stderr: Option<Stdio>,
    /// Make this pipe end the child's descriptor number `.0` (s6 notification-fd).
    pub extra_fd: Option<(i32, &'a OwnedFd)>,
    /// Become the terminal's foreground process group (the main command only).
    pub take_terminal: bool,
    /// Join the cgroup whose `cgroup.procs` this is (see [`crate::init::cgroup`]).
    pub cgroup: Option<&'a std::ffi::CStr>,
}

/// Why a command could not be started, with the shell-style exit code to report.
#[derive(Debug)]
pub struct SpawnError {
    pub exit_code: i32,
    pub message: String,
}

/// Starts `argv` as a child and returns its pid, which is also its process group id.
pub fn spawn(
    argv: &[OsString],
    setup: Setup<'_>,
    signals: ChildSignalReset,
) -> Result<i32, SpawnError> {
    let Some((program, args)) = argv.split_first() else {
        return Err(SpawnError {
            exit_code: 127,
            message: "empty command".to_owned(),
        });
    };
    let mut command = Command::new(program);
    command.args(args).process_group(0);
    if let Some(cwd) = setup.cwd {
        command.current_dir(cwd);
    }
    command.envs(setup.env.iter().copied());
    if let Some(credentials) = setup.credentials {
        command
            .env("USER", &credentials.user)
            .env("LOGNAME", &credentials.user);
        if let Some(home) = &credentials.home {
            command.env("HOME", home);
        }
    }
    if let Some(stdin) = setup.stdin {
        command.stdin(stdin);
    }
    if let Some(stdout) = setup.stdout {
        command.stdout(stdout);
    }
    if let Some(stderr) = setup.stderr {
        command.stderr(stderr);
    }
    let take_terminal = setup.take_terminal && stdin_is_terminal();
    // A pidvisor that is not root cannot switch users, not even call setgroups: a service
    // meant to run as pidvisor's own user and group simply keeps them.
    let own = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    let switch = setup
        .credentials
        .filter(|c| own.0 == 0 || (c.uid, c.gid) != own);
    let ids = switch.map(|c| {
        (
            c.uid,
            c.gid,
            c.groups
                .iter()
                .map(|&g| g as libc::gid_t)
                .collect::<Vec<_>>(),
        )
    });
    let no_new_privileges = setup.credentials.is_some_and(|c| c.no_new_privileges);
    let umask = setup.umask;
    let cgroup = setup.cgroup.map(std::ffi::CStr::to_owned);
    // Held until the child has started: see `occupy`.
    let (extra_fd, _placeholder) = match setup.extra_fd {
        Some((target, fd)) => {
            let (source, placeholder) = occupy(target, fd).map_err(|err| SpawnError {
                exit_code: 126,
                message: format!("cannot set up descriptor {target}: {err}"),
            })?;
            (Some((target, source)), placeholder)
        }
        None => (None, None),
    };
    // SAFETY: the closure only makes async-signal-safe system calls and allocates nothing
    // (the group list was built before the fork), as required between fork and exec.
    unsafe {
        command.pre_exec(move || {
            if let Some(procs) = &cgroup {
                crate::init::cgroup::join(procs)?;
            }
            if take_terminal {
                // Fails harmlessly (ENOTTY) when the terminal is not our controlling one.
                libc::tcsetpgrp(libc::STDIN_FILENO, libc::getpid());
            }
            if let Some((target, source)) = extra_fd {
                pass_descriptor(source, target)?;
            }
            if let Some(mask) = umask {
                libc::umask(mask as libc::mode_t);
            }
            if let Some((uid, gid, groups)) = &ids {
                check(libc::setgroups(groups.len(), groups.as_ptr()))?;
                check(libc::setgid(*gid))?;
                check(libc::setuid(*uid))?;
            }
            if no_new_privileges {
                check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))?;
            }
            crate::init::limits::restore_for_child()?;
            signals.apply()
        });
    }
    match command.spawn() {
        // The Child handle is dropped on purpose: pidvisor reaps with waitpid(-1), and
        // dropping neither waits nor kills.
        Ok(child) => Ok(child.id() as i32),
        Err(err) => Err(SpawnError {
            exit_code: exit_code_for_spawn_error(&err),
            message: match err.raw_os_error() == Some(libc::ENOENT) {
                true => shebang::missing_interpreter(Path::new(program)),
                false => None,
            }
            .map_or_else(
                || format!("cannot run '{}': {err}", program.to_string_lossy()),
                |missing| {
                    format!(
                        "cannot run '{}': its interpreter {} (the #! line) does not exist",
                        program.to_string_lossy(),
                        missing.display()
                    )
                },
            ),
        }),
    }
}

/// Makes sure that descriptor number `target` is taken in pidvisor while it spawns, and
/// returns the descriptor the child should copy to `target` (plus a copy to hold until
/// the child has started, if one was made).
///
/// `Command::spawn` opens descriptors of its own after this (among them the
/// close-on-exec pipe through which the child reports a failed `exec`), each at the
/// lowest free number. Had one of them landed on `target`, the child's `dup2` onto
/// `target` would replace it: a replaced error pipe reports success to pidvisor at once,
/// and a failed `exec` then writes its error into the notification pipe and exits 1,
/// instead of being reported as "cannot run" with 126 or 127. So when `target` is free,
/// `source` is copied there now (close-on-exec: in the child, only clearing that flag is
/// left to do); when pidvisor uses `target` itself, the child's `dup2` replaces only the
/// child's copy of pidvisor's descriptor, which `exec` would have closed anyway.
fn occupy(target: i32, source: &OwnedFd) -> io::Result<(i32, Option<OwnedFd>)> {
    // SAFETY: F_GETFD only asks whether `target` is open.
    let taken = unsafe { libc::fcntl(target, libc::F_GETFD) } >= 0;
    if taken {
        return Ok((source.as_raw_fd(), None));
    }
    // SAFETY: `target` is free, so dup3 replaces nothing; the copy gets one owner.
    let copy = unsafe { libc::dup3(source.as_raw_fd(), target, libc::O_CLOEXEC) };
    check(copy)?;
    // SAFETY: dup3 just made `copy` (equal to `target`); nothing else owns it.
    Ok((target, Some(unsafe { OwnedFd::from_raw_fd(copy) })))
}

/// Makes `source` the descriptor `target` of the child, without close-on-exec.
fn pass_descriptor(source: i32, target: i32) -> io::Result<()> {
    if source == target {
        // SAFETY: fcntl on a descriptor we own; clears FD_CLOEXEC only.
        check(unsafe { libc::fcntl(target, libc::F_SETFD, 0) })
    } else {
        // SAFETY: dup2 onto a number the child chose; the duplicate has no FD_CLOEXEC.
        check(unsafe { libc::dup2(source, target) })
    }
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// 127 when the program does not exist (like a shell's "command not found"), 126 when it
/// exists but cannot be executed.
fn exit_code_for_spawn_error(err: &io::Error) -> i32 {
    match err.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENOTDIR) => 127,
        _ => 126,
    }
}

fn stdin_is_terminal() -> bool {
    // SAFETY: isatty has no memory-safety preconditions.
    unsafe { libc::isatty(libc::STDIN_FILENO) == 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_free_target_is_taken_by_a_copy_and_a_taken_one_is_left_alone() {
        let crate::init::pipe::Pipe { read, write } = crate::init::pipe::Pipe::new().expect("pipe");
        // A number this test binary does not use.
        let (source, placeholder) = occupy(900, &write).expect("occupy");
        assert_eq!(source, 900);
        let placeholder = placeholder.expect("a copy at 900");
        assert_eq!(placeholder.as_raw_fd(), 900);
        // SAFETY: F_GETFD on an open descriptor.
        let flags = unsafe { libc::fcntl(900, libc::F_GETFD) };
        assert_eq!(flags & libc::FD_CLOEXEC, libc::FD_CLOEXEC);

        // The source's own number, or any number pidvisor uses: no copy.
        for taken in [write.as_raw_fd(), read.as_raw_fd()] {
            let (source, placeholder) = occupy(taken, &write).expect("occupy");
            assert_eq!(source, write.as_raw_fd());
            assert!(placeholder.is_none());
        }
    }

    #[test]
    fn missing_is_127_and_unexecutable_is_126() {
        let code = |errno| exit_code_for_spawn_error(&io::Error::from_raw_os_error(errno));
        assert_eq!(code(libc::ENOENT), 127);
        assert_eq!(code(libc::ENOTDIR), 127);
        assert_eq!(code(libc::EACCES), 126);
        assert_eq!(code(libc::ENOEXEC), 126);
    }
}
