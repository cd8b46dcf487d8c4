//! s6's readiness protocol: a newline on the descriptor given by `--notify-fd`, once, then
//! the descriptor is closed.

use std::fs::File;
use std::io::Write;
use std::os::fd::{FromRawFd, RawFd};

use crate::cli::UsageError;

pub struct Readiness {
    pipe: Option<File>,
}

impl Readiness {
    pub fn none() -> Readiness {
        Readiness { pipe: None }
    }

    /// Takes over descriptor `fd`, which must be open (a supervisor passes it).
    pub fn from_fd(fd: RawFd) -> Result<Readiness, UsageError> {
        // SAFETY: F_GETFD only reads the descriptor's flags.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            return Err(UsageError(format!(
                "--notify-fd {fd}: descriptor {fd} is not open (the supervisor passes it; \
                 drop the option when running by hand)"
            )));
        }
        // SAFETY: the descriptor is open and nothing else in this process uses it.
        let pipe = unsafe { File::from_raw_fd(fd) };
        Ok(Readiness { pipe: Some(pipe) })
    }

    /// Says "ready" (only the first call writes).
    pub fn ready(&mut self) {
        if let Some(mut pipe) = self.pipe.take()
            && let Err(error) = pipe.write_all(b"\n")
        {
            tracing::warn!("--notify-fd: writing the readiness newline: {error}");
        }
    }
}
