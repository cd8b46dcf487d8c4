//! Starting a child: fork, a clean process state, exec.
//!
//! The child runs in its own process group (so that a signal can reach a shell wrapper
//! and everything it started), and when stdin is a terminal that group becomes the
//! terminal's foreground group, so job control and Ctrl-C work as if pidvisor were not
//! there. Signal state is reset as described in [`crate::signals`]. pidvisor's own file
//! descriptors are all close-on-exec; descriptors inherited from whoever started pidvisor
//! are passed through untouched, since they were meant for the container's program.
//!
//! `std::process::Command` does the fork and exec: it reports a failed `exec` back to the
//! parent through a close-on-exec pipe, which is what turns "not found" and "permission
//! denied" into exit codes 127 and 126 with a clear message.

use std::ffi::OsString;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::signals::ChildSignalReset;

/// Why a command could not be started, with the shell-style exit code to report.
#[derive(Debug)]
pub struct SpawnError {
    pub exit_code: i32,
    pub message: String,
}

/// Starts `argv` as a child and returns its pid. The child is already in its own process
/// group and, with a terminal on stdin, in the foreground, when this returns.
pub fn spawn(argv: &[OsString], signals: ChildSignalReset) -> Result<i32, SpawnError> {
    let Some((program, args)) = argv.split_first() else {
        return Err(SpawnError {
            exit_code: 127,
            message: "empty command".to_owned(),
        });
    };
    let take_terminal = stdin_is_terminal();
    let mut command = Command::new(program);
    command.args(args).process_group(0);
    // SAFETY: the closure only makes async-signal-safe system calls and allocates nothing,
    // as required between fork and exec.
    unsafe {
        command.pre_exec(move || {
            if take_terminal {
                // Fails harmlessly (ENOTTY) when the terminal is not our controlling one.
                libc::tcsetpgrp(libc::STDIN_FILENO, libc::getpid());
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
