//! Readiness checks that are file descriptors in the event loop: the s6 notification pipe
//! and a non-blocking TCP connect.
//!
//! A notification pipe is made for each run of a service: the write end becomes the
//! descriptor the service was told about, and the service is ready when it writes a
//! newline there. A TCP probe is one non-blocking `connect`; its socket turns writable when
//! the attempt ends, and `SO_ERROR` tells whether it succeeded. A refused attempt is
//! retried at a deadline (see the supervisor), never in a sleep.

use std::io;
use std::mem::size_of;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::init::pipe::{Pipe, set_nonblocking};

/// What a readable notification pipe said.
#[derive(Debug, PartialEq, Eq)]
pub enum Notification {
    /// A newline arrived: the service is ready.
    Ready,
    /// The service closed its end without a newline.
    Closed,
    /// Some bytes, but no newline yet.
    NotYet,
}

/// Reads per readiness event of a notification pipe (see [`NotifyPipe::on_readable`]).
const NOTIFY_READS: usize = 4;

/// The read end of one run's notification pipe (the write end went to the service).
pub struct NotifyPipe {
    read: OwnedFd,
}

impl NotifyPipe {
    /// Makes the pipe; returns the reader and the end to pass to the child.
    pub fn new() -> io::Result<(NotifyPipe, OwnedFd)> {
        let Pipe { read, write } = Pipe::new()?;
        set_nonblocking(&read)?;
        Ok((NotifyPipe { read }, write))
    }

    /// Reads what the service wrote, at most [`NOTIFY_READS`] chunks: a service that
    /// keeps writing without a newline must not hold the loop here (epoll is
    /// level-triggered, so the rest is read on the next round).
    pub fn on_readable(&self) -> io::Result<Notification> {
        let mut buf = [0u8; 4096];
        for _ in 0..NOTIFY_READS {
            // SAFETY: reads at most buf.len() bytes into buf.
            let n =
                unsafe { libc::read(self.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n == 0 {
                return Ok(Notification::Closed);
            }
            if n < 0 {
                let err = io::Error::last_os_error();
                return match err.kind() {
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::WouldBlock => Ok(Notification::NotYet),
                    _ => Err(err),
                };
            }
            if buf[..n as usize].contains(&b'\n') {
                return Ok(Notification::Ready);
            }
        }
        Ok(Notification::NotYet)
    }
}

impl AsFd for NotifyPipe {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }
}

/// One non-blocking connection attempt.
pub struct TcpProbe {
    socket: OwnedFd,
}

impl TcpProbe {
    /// Starts connecting. The probe's socket becomes writable when the attempt is over.
    pub fn connect(addr: SocketAddr) -> io::Result<TcpProbe> {
        let family = match addr {
            SocketAddr::V4(_) => libc::AF_INET,
            SocketAddr::V6(_) => libc::AF_INET6,
        };
        // SAFETY: plain socket creation; the descriptor gets one owner below.
        let raw = unsafe {
            libc::socket(
                family,
                libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: socket() just returned this descriptor.
        let socket = unsafe { OwnedFd::from_raw_fd(raw) };
        let (storage, len) = sockaddr(addr);
        // SAFETY: `storage` holds a valid sockaddr of `len` bytes.
        let rc = unsafe {
            libc::connect(
                socket.as_raw_fd(),
                (&storage as *const libc::sockaddr_storage).cast(),
                len,
            )
        };
        if rc != 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EINPROGRESS) {
                return Err(err);
            }
        }
        Ok(TcpProbe { socket })
    }

    /// After the socket turned writable: did the connection succeed?
    pub fn succeeded(&self) -> bool {
        let mut error: libc::c_int = 0;
        let mut len = size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt writes one c_int into `error`.
        let rc = unsafe {
            libc::getsockopt(
                self.socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                (&mut error as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        rc == 0 && error == 0
    }
}

impl AsFd for TcpProbe {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(v4.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(v6) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: v6.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.ip().octets(),
                },
                sin6_scope_id: v6.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;

    #[test]
    fn a_newline_on_the_notification_pipe_means_ready() {
        let (reader, writer) = NotifyPipe::new().expect("pipe");
        let mut writer = std::fs::File::from(writer);
        assert_eq!(reader.on_readable().expect("read"), Notification::NotYet);
        writer.write_all(b"x").expect("write");
        assert_eq!(reader.on_readable().expect("read"), Notification::NotYet);
        writer.write_all(b"\n").expect("write");
        assert_eq!(reader.on_readable().expect("read"), Notification::Ready);
        drop(writer);
        assert_eq!(reader.on_readable().expect("read"), Notification::Closed);
    }

    #[test]
    fn a_notification_pipe_full_of_other_bytes_is_read_a_bounded_amount_at_a_time() {
        let (reader, writer) = NotifyPipe::new().expect("pipe");
        set_nonblocking(&writer).expect("nonblocking");
        let mut writer = std::fs::File::from(writer);
        let mut written = 0;
        while let Ok(n) = writer.write(&[b'x'; 4096]) {
            written += n;
        }
        assert!(
            written >= 4096 * NOTIFY_READS * 2,
            "pipe of {written} bytes"
        );
        assert_eq!(reader.on_readable().expect("read"), Notification::NotYet);
        // Not drained in one go: what a writer that keeps pace would never let happen.
        let mut left = 0;
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: reads at most buf.len() bytes into buf.
            let n =
                unsafe { libc::read(reader.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                break;
            }
            left += n as usize;
        }
        assert_eq!(left, written - 4096 * NOTIFY_READS);
    }

    #[test]
    fn tcp_probe_tells_listening_from_closed_ports() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let open = listener.local_addr().expect("addr");
        let probe = TcpProbe::connect(open).expect("connect");
        wait_writable(&probe);
        assert!(probe.succeeded());

        drop(listener);
        let probe = TcpProbe::connect(open).expect("connect");
        wait_writable(&probe);
        assert!(!probe.succeeded());
    }

    fn wait_writable(probe: &TcpProbe) {
        let mut pfd = libc::pollfd {
            fd: probe.as_fd().as_raw_fd(),
            events: libc::POLLOUT,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, 5000) };
        assert_eq!(n, 1);
    }
}
