//! One client connection: its buffers, what it is doing ([`Mode`]), what it wants from the
//! event loop (reading, writing) and when it must be dealt with if nothing happens; who is
//! at the other end; and which I/O errors are worth another try.

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use nix::sys::epoll::EpollFlags;

/// A client with no request in progress is closed after this long without a complete
/// request line (so a half-written request cannot hold a slot for ever).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// A client whose pending output has not moved for this long is dropped.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client being closed gets to read its last error line.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Waiting for a request line.
    Idle,
    /// A request is being carried out (e.g. a wait); its reply comes later.
    Busy,
    /// Receives every event line as it happens.
    Following,
    /// Its last line is being written; closed once written or after [`CLOSE_GRACE`].
    Closing { since: Instant },
}

pub(super) struct Client {
    pub(super) stream: UnixStream,
    pub(super) input: Vec<u8>,
    pub(super) output: Vec<u8>,
    /// How much of `output` has been written.
    pub(super) written: usize,
    pub(super) mode: Mode,
    /// The peer sent end-of-file: no more requests (replies still go out).
    pub(super) read_closed: bool,
    /// Connected, or finished its last request, or last managed to write: for timeouts.
    pub(super) since: Instant,
    pub(super) interest: EpollFlags,
}

impl Client {
    pub(super) fn pending(&self) -> usize {
        self.output.len() - self.written
    }

    pub(super) fn queue(&mut self, line: &str) {
        if self.written > 0 && self.written == self.output.len() {
            self.output.clear();
            self.written = 0;
        }
        self.output.extend_from_slice(line.as_bytes());
    }

    /// Whether the next request line may be carried out now: none is in progress, and
    /// the last reply has gone out (a client that does not read its replies gets no more).
    pub(super) fn can_take_request(&self) -> bool {
        self.mode == Mode::Idle && self.pending() == 0
    }

    /// Whether to read more from the client. Not while a complete line waits for its
    /// turn: what it sends then stays in the socket (bounded by the kernel) instead of
    /// piling up in `input`.
    fn wants_input(&self) -> bool {
        !self.read_closed
            && match self.mode {
                Mode::Closing { .. } => false,
                Mode::Following => true,
                Mode::Idle | Mode::Busy => !self.input.contains(&b'\n'),
            }
    }

    pub(super) fn wanted_interest(&self) -> EpollFlags {
        let mut flags = EpollFlags::empty();
        if self.wants_input() {
            flags |= EpollFlags::EPOLLIN;
        }
        if self.pending() > 0 {
            flags |= EpollFlags::EPOLLOUT;
        }
        flags
    }

    /// When this client must be dealt with if nothing happens.
    pub(super) fn deadline(&self) -> Option<Instant> {
        match self.mode {
            Mode::Closing { since } => Some(since + CLOSE_GRACE),
            _ if self.pending() > 0 => Some(self.since + WRITE_TIMEOUT),
            Mode::Idle if !self.read_closed => Some(self.since + IDLE_TIMEOUT),
            _ => None,
        }
    }
}

pub(super) fn is_transient(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    ) || err.raw_os_error() == Some(libc::ECONNABORTED)
}

/// The uid of the process at the other end (`SO_PEERCRED`).
pub(super) fn peer_uid(stream: &UnixStream) -> io::Result<u32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` is a valid, writable ucred and `len` holds its size.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&raw mut cred).cast(),
            &mut len,
        )
    };
    if rc == 0 {
        Ok(cred.uid)
    } else {
        Err(io::Error::last_os_error())
    }
}
