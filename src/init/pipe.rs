//! The pipes pidvisor makes for its children: both ends close-on-exec, each handed to a
//! child as a copy (or, for a pipe whose write end pidvisor does not keep, as a write end
//! opened anew through `/proc/self/fd`), and made non-blocking where the event loop reads
//! them.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

/// A pipe, both ends close-on-exec.
pub struct Pipe {
    pub read: OwnedFd,
    pub write: OwnedFd,
}

impl Pipe {
    pub fn new() -> io::Result<Pipe> {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 just created both descriptors; each gets exactly one owner.
        let (read, write) = unsafe {
            use std::os::fd::FromRawFd;
            (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))
        };
        Ok(Pipe { read, write })
    }
}

/// A new write end of the pipe whose read end is `read`: `/proc/self/fd/N` opened for
/// writing opens the pipe itself (as a FIFO), not a copy of descriptor N. It never waits,
/// since `read` is open. Fails where /proc is not mounted.
pub fn reopen_write_end(read: &OwnedFd) -> io::Result<OwnedFd> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/self/fd/{}", read.as_raw_fd()))
        .map(OwnedFd::from)
}

/// Makes reads and writes on `fd` return at once instead of waiting.
pub fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own, only adding O_NONBLOCK.
    unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// How many bytes wait in the pipe whose read end is `fd` (`FIONREAD`).
pub fn unread_bytes(fd: &OwnedFd) -> io::Result<usize> {
    let mut count: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int into `count`.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut count) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(usize::try_from(count).unwrap_or(0))
}
