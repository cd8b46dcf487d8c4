//! Starting a child: fork, a clean process state, exec.
//!
//! Every child runs in its own process group (so that a signal can reach a shell wrapper
//! and everything it started). The main command, when stdin is a terminal, gets that
//! terminal's foreground, so job control and Ctrl-C work as if pidvisor were not there.
//! Signal state is reset as described in [`crate::signals`]. pidvisor's own file
//! descriptors are all close-on-exec; descriptors inherited from whoever started pidvisor
//! are passed through untouched, since they were meant for the container's programs.
//!
//! `std::process::Command` does the fork and exec: it reports a failed `exec` back to the
//! parent through a close-on-exec pipe, which is what turns "not found" and "permission
//! denied" into exit codes 127 and 126 with a clear message. Credentials, umask and the
//! readiness descriptor are set in the child between fork and exec, with async-signal-safe
//! calls only.

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::signals::ChildSignalReset;
use crate::spec::Credentials;

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
    let ids = setup.credentials.map(|c| {
        (
            c.uid,
            c.gid,
            c.groups
                .iter()
                .map(|&g| g as libc::gid_t)
                .collect::<Vec<_>>(),
        )
    });
    let umask = setup.umask;
    let extra_fd = setup.extra_fd.map(|(target, fd)| (target, fd.as_raw_fd()));
    // SAFETY: the closure only makes async-signal-safe system calls and allocates nothing
    // (the group list was built before the fork), as required between fork and exec.
    unsafe {
        command.pre_exec(move || {
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
            signals.apply()
        });
    }
    match command.spawn() {
        // The Child handle is dropped on purpose: pidvisor reaps with waitpid(-1), and
        // dropping neither waits nor kills.
        Ok(child) => Ok(child.id() as i32),
        Err(err) => Err(SpawnError {
            exit_code: exit_code_for_spawn_error(&err),
            message: format!("cannot run '{}': {err}", program.to_string_lossy()),
        }),
    }
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
    fn missing_is_127_and_unexecutable_is_126() {
        let code = |errno| exit_code_for_spawn_error(&io::Error::from_raw_os_error(errno));
        assert_eq!(code(libc::ENOENT), 127);
        assert_eq!(code(libc::ENOTDIR), 127);
        assert_eq!(code(libc::EACCES), 126);
        assert_eq!(code(libc::ENOEXEC), 126);
    }
}
