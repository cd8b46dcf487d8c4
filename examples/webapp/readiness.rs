//! s6's readiness protocol: the supervisor opens a pipe as descriptor N before starting
//! the service; the service writes a newline to it once it is ready, then closes it.
//! pidvisor's `ready = { notify-fd = N }` speaks it.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{FromRawFd, RawFd};

/// The claimed descriptor, until the service is ready.
pub struct Notifier {
    fd: RawFd,
    file: File,
}

/// Takes descriptor `fd` for the readiness newline, after checking that it is open for
/// writing and is not stdin, stdout or stderr.
pub fn claim(fd: RawFd) -> Result<Notifier, String> {
    if fd <= 2 {
        return Err(format!(
            "--notify-fd {fd}: 0, 1 and 2 are stdin, stdout and stderr; pass the descriptor \
             the supervisor opened for readiness (3 or more)"
        ));
    }
    // SAFETY: F_GETFL only reads the flags of a descriptor, open or not.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags == -1 {
        return Err(format!(
            "--notify-fd {fd}: descriptor {fd} is not open ({}); start webapp with it open \
             for writing, as pidvisor does for ready = {{ notify-fd = {fd} }}",
            io::Error::last_os_error()
        ));
    }
    if flags & libc::O_ACCMODE == libc::O_RDONLY {
        return Err(format!(
            "--notify-fd {fd}: descriptor {fd} is open for reading only; pass the write end"
        ));
    }
    // SAFETY: the descriptor is open (checked above), this process opened nothing yet, and
    // from here on only this `File` uses it.
    let file = unsafe { File::from_raw_fd(fd) };
    Ok(Notifier { fd, file })
}

impl Notifier {
    /// Writes the newline and closes the descriptor.
    pub fn ready(mut self) -> Result<(), String> {
        self.file.write_all(b"\n").map_err(|e| {
            format!(
                "--notify-fd {}: writing the readiness newline: {e}",
                self.fd
            )
        })
    }
}
