//! The two system calls std does not offer: `poll(2)` over several descriptors, and the
//! `SIOCOUTQ` ioctl that tells how many bytes written to a TCP socket the peer has not
//! acknowledged yet.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

pub use libc::{POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDHUP};

/// One descriptor to watch, and what happened to it after [`poll`].
pub struct Watch<'fd> {
    pub fd: BorrowedFd<'fd>,
    pub events: i16,
    pub revents: i16,
}

impl<'fd> Watch<'fd> {
    pub fn new(fd: BorrowedFd<'fd>, events: i16) -> Watch<'fd> {
        Watch {
            fd,
            events,
            revents: 0,
        }
    }

    pub fn fired(&self, events: i16) -> bool {
        self.revents & events != 0
    }
}

/// Waits until one of `watches` is ready or `timeout` (None: forever) has passed.
/// EINTR counts as "nothing happened": the caller loops anyway.
pub fn poll(watches: &mut [Watch], timeout: Option<Duration>) -> io::Result<()> {
    let mut fds: Vec<libc::pollfd> = watches
        .iter()
        .map(|w| libc::pollfd {
            fd: w.fd.as_raw_fd(),
            events: w.events,
            revents: 0,
        })
        .collect();
    // Rounded up, so that a deadline 0.4 ms away does not become a busy loop.
    let timeout_ms = match timeout {
        None => -1,
        Some(t) => t.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32,
    };
    // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs that lives across the
    // call, and every fd in it is borrowed from a live owner for the duration.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    if n < 0 {
        let err = io::Error::last_os_error();
        return match err.kind() {
            io::ErrorKind::Interrupted => Ok(()),
            _ => Err(err),
        };
    }
    for (watch, fd) in watches.iter_mut().zip(&fds) {
        watch.revents = fd.revents;
    }
    Ok(())
}

/// Bytes written to the TCP socket `fd` that the peer has not acknowledged (SIOCOUTQ:
/// `write_seq - snd_una`). It stays readable after the connection is reset, which is
/// what tells how much of the stream the peer had acknowledged when it went away.
pub fn unacked_bytes(fd: BorrowedFd) -> io::Result<u64> {
    let mut bytes: libc::c_int = 0;
    // SAFETY: TIOCOUTQ (= SIOCOUTQ for sockets) writes one c_int to the pointer, which
    // points to a live c_int.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCOUTQ, &mut bytes) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(bytes.max(0) as u64)
}
