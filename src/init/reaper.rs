//! Reaping: collects every child that has exited, known or orphaned, until none is left.
//!
//! SIGCHLD coalesces (a thousand children dying at once may raise it once), so one
//! notification means "reap until `waitpid` says there is nothing more", never "reap one".
//! Raw `libc::waitpid` is used because a child killed by a real-time signal must be
//! reaped like any other, and higher-level wrappers refuse to decode that status.

use std::io;

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It called `exit(code)`.
    Code(i32),
    /// It was killed by this signal.
    Signal(i32),
}

impl Exit {
    /// The shell convention that container runtimes report: the code itself, or 128+N
    /// for death by signal N.
    pub fn exit_code(self) -> i32 {
        match self {
            Exit::Code(code) => code,
            Exit::Signal(signo) => 128 + signo,
        }
    }

    fn from_wait_status(status: i32) -> Option<Exit> {
        if libc::WIFEXITED(status) {
            Some(Exit::Code(libc::WEXITSTATUS(status)))
        } else if libc::WIFSIGNALED(status) {
            Some(Exit::Signal(libc::WTERMSIG(status)))
        } else {
            None
        }
    }
}

/// What is left after a round of reaping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remaining {
    /// Some children are still running.
    Some,
    /// No child at all: as PID 1 this means no other process exists in the namespace.
    None,
}

/// Reaps every child that has already exited, calling `on_exit(pid, exit)` for each, and
/// says whether children remain. Never blocks.
pub fn reap_all(mut on_exit: impl FnMut(i32, Exit)) -> io::Result<Remaining> {
    loop {
        let mut status = 0;
        // SAFETY: `status` is a valid out-pointer; WNOHANG keeps the call non-blocking.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        match pid {
            0 => return Ok(Remaining::Some),
            pid if pid > 0 => {
                if let Some(exit) = Exit::from_wait_status(status) {
                    on_exit(pid, exit);
                }
            }
            _ => {
                let err = io::Error::last_os_error();
                match err.raw_os_error() {
                    Some(libc::ECHILD) => return Ok(Remaining::None),
                    Some(libc::EINTR) => continue,
                    _ => return Err(err),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_shell_convention() {
        assert_eq!(Exit::Code(0).exit_code(), 0);
        assert_eq!(Exit::Code(255).exit_code(), 255);
        assert_eq!(Exit::Signal(libc::SIGTERM).exit_code(), 143);
        assert_eq!(Exit::Signal(libc::SIGKILL).exit_code(), 137);
    }

    #[test]
    fn decodes_raw_wait_statuses() {
        // Status words as the kernel builds them: code << 8 for exits, the signal number
        // in the low 7 bits for deaths, 0x7f in the low byte for stops.
        assert_eq!(Exit::from_wait_status(3 << 8), Some(Exit::Code(3)));
        assert_eq!(Exit::from_wait_status(9), Some(Exit::Signal(9)));
        assert_eq!(Exit::from_wait_status(34), Some(Exit::Signal(34)));
        assert_eq!(Exit::from_wait_status((19 << 8) | 0x7f), None);
    }
}
