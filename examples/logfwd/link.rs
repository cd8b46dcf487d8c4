//! One TCP connection to the collector, which remembers every line the collector has not
//! acknowledged, so that a lost connection loses no line.
//!
//! # When is a line delivered?
//!
//! Plain TCP syslog has no application-level acknowledgement (RELP exists for that), so
//! the best evidence a sender has is TCP's own: a line counts as delivered once the
//! collector's TCP stack has acknowledged every byte of its frame. The kernel tells how
//! many written bytes are still unacknowledged (`SIOCOUTQ`, see `sys.rs`); the frames
//! below that mark stay here. When the connection is lost (end of file or an error on
//! read, an error on write), the kernel still knows how far the peer had acknowledged:
//! the frames above that mark go back to the front of the buffer and are sent again,
//! whole, on the next connection. A frame the collector got only in part is discarded by
//! it (rsyslog drops an incomplete frame at the end of a connection), so it is sent once.
//!
//! That closes the classic loss of TCP forwarders: writes that "succeed" into a
//! connection whose peer is gone, and vanish with the RST that follows.
//!
//! # What an acknowledgement proves, and what a collector restart can cost
//!
//! An ACK says that the peer's kernel holds the bytes, not that the collector read them.
//! How the connection ends tells which case we are in:
//!
//! - Clean close (FIN: `read` returns end of file, or a later write fails with EPIPE,
//!   which Linux reports only after a FIN): a kernel sends FIN on `close` only when the
//!   receive queue is empty, and the FIN acknowledges everything received. So every
//!   acknowledged byte was read and every unacknowledged one was not: exactly once.
//!   This is what a collector stopped while the stream is idle does.
//! - Reset (RST: ECONNRESET): the collector closed with unread data in its socket (rsyslog
//!   stops reading on SIGTERM, drains its queues, then closes; whatever arrived meanwhile
//!   is discarded). Bytes its kernel acknowledged but it never read are lost (Linux
//!   acknowledges unread data about every 64 KiB on loopback, and all of it when the
//!   collector is behind), and bytes it read whose ACK had not come back yet are sent
//!   again. Nothing on the sender's side can tell these apart; this is logged as a warning
//!   naming the risk.
//!
//! Measured (tests/logfwd/delivery.rs, rsyslog 8.2302 on loopback, collector stopped with
//! SIGTERM and started again mid-stream): at up to 10,000 lines/s, 0 lost and 0
//! duplicated (asserted; the close is clean, or a reset with nothing acknowledged
//! unread). Flat out, where rsyslog falls behind and holds up to megabytes acknowledged
//! but unread in its socket: 0 duplicated, and 0 to ~14,000 of 200,000 lines lost (what
//! rsyslog discarded at exit). Exactly once at any rate needs acknowledgements from the
//! collector: RELP (rsyslog's `imrelp`), not plain TCP.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use crate::cli::Target;
use crate::sys;

/// How long one connect attempt may take (a collector behind a firewall that drops
/// packets, rather than refusing them).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How many frames one `writev` carries at most.
const FRAMES_PER_WRITE: usize = 64;

pub struct Link {
    stream: TcpStream,
    /// Frames given to this connection and not acknowledged yet, oldest first. The first
    /// `written` of them were written whole; the next one `partial` bytes of it.
    frames: VecDeque<Vec<u8>>,
    written: usize,
    partial: usize,
    /// Stream offset of the first byte of `frames[0]`, and of the next byte to write.
    first_offset: u64,
    write_offset: u64,
    /// Bytes in `frames` not written yet.
    unwritten_bytes: usize,
    /// Since when lines have been waiting without the collector acknowledging any.
    waiting_since: Option<Instant>,
}

/// Why a connection ended.
pub enum Lost {
    /// The collector closed it cleanly (FIN): everything it acknowledged, it read.
    Closed,
    /// The collector reset it: it may have acknowledged lines it never read.
    Reset,
    Failed(io::Error),
}

impl Lost {
    fn from_error(err: io::Error) -> Lost {
        match err.raw_os_error() {
            // After a FIN, Linux reports the peer's RST as EPIPE rather than ECONNRESET.
            Some(libc::EPIPE) => Lost::Closed,
            Some(libc::ECONNRESET) => Lost::Reset,
            _ => Lost::Failed(err),
        }
    }
}

impl fmt::Display for Lost {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Lost::Closed => write!(f, "the collector closed the connection"),
            Lost::Reset => write!(
                f,
                "the collector reset the connection with lines unread: lines it acknowledged \
                 but did not read are lost, lines it read but did not acknowledge are sent twice"
            ),
            Lost::Failed(err) => write!(f, "the connection failed: {err}"),
        }
    }
}

impl Link {
    /// Resolves `target` and connects to the first address that accepts.
    pub fn connect(target: &Target) -> io::Result<Link> {
        let mut failure = io::Error::new(io::ErrorKind::NotFound, "the name has no address");
        for addr in (target.host.as_str(), target.port).to_socket_addrs()? {
            match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
                Ok(stream) => {
                    stream.set_nonblocking(true)?;
                    stream.set_nodelay(true)?;
                    return Ok(Link {
                        stream,
                        frames: VecDeque::new(),
                        written: 0,
                        partial: 0,
                        first_offset: 0,
                        write_offset: 0,
                        unwritten_bytes: 0,
                        waiting_since: None,
                    });
                }
                Err(err) => failure = err,
            }
        }
        Err(failure)
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }

    /// Queues a frame to be written after the others.
    pub fn push(&mut self, frame: Vec<u8>) {
        self.waiting_since.get_or_insert_with(Instant::now);
        self.unwritten_bytes += frame.len();
        self.frames.push_back(frame);
    }

    pub fn unwritten_bytes(&self) -> usize {
        self.unwritten_bytes
    }

    /// Since when the collector has acknowledged nothing although lines wait (None: none
    /// wait).
    pub fn waiting_since(&self) -> Option<Instant> {
        self.waiting_since
    }

    /// Lines given to this connection that the collector has not acknowledged.
    pub fn unacknowledged(&self) -> usize {
        self.frames.len()
    }

    /// Writes what the socket takes without blocking.
    pub fn write(&mut self) -> Result<(), Lost> {
        while self.written < self.frames.len() {
            let pending = self.frames.iter().skip(self.written).take(FRAMES_PER_WRITE);
            let slices: Vec<IoSlice> = pending
                .enumerate()
                .map(|(i, frame)| IoSlice::new(&frame[if i == 0 { self.partial } else { 0 }..]))
                .collect();
            match self.stream.write_vectored(&slices) {
                Ok(0) => return Err(Lost::Failed(io::ErrorKind::WriteZero.into())),
                Ok(n) => self.advance(n),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(Lost::from_error(err)),
            }
        }
        Ok(())
    }

    fn advance(&mut self, mut bytes: usize) {
        self.write_offset += bytes as u64;
        self.unwritten_bytes -= bytes;
        while bytes > 0 {
            let rest = self.frames[self.written].len() - self.partial;
            if bytes < rest {
                self.partial += bytes;
                return;
            }
            bytes -= rest;
            self.written += 1;
            self.partial = 0;
        }
    }

    /// Forgets the frames the collector has acknowledged.
    pub fn note_acknowledged(&mut self) -> io::Result<()> {
        let unacked = sys::unacked_bytes(self.stream.as_fd())?;
        let acked = self.write_offset.saturating_sub(unacked);
        while self.written > 0 {
            let Some(len) = self.frames.front().map(|f| f.len() as u64) else {
                break;
            };
            if self.first_offset + len > acked {
                break;
            }
            self.frames.pop_front();
            self.first_offset += len;
            self.written -= 1;
            self.waiting_since = (!self.frames.is_empty()).then(Instant::now);
        }
        Ok(())
    }

    /// Reads what the collector says (nothing, for syslog): end of file or an error
    /// means the connection is over.
    pub fn check_peer(&mut self) -> Result<(), Lost> {
        let mut ignored = [0u8; 512];
        loop {
            match self.stream.read(&mut ignored) {
                Ok(0) => return Err(Lost::Closed),
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(Lost::from_error(err)),
            }
        }
    }

    /// Ends the connection; returns the frames the collector did not acknowledge, in
    /// order, to be sent again on the next one.
    pub fn into_unacknowledged(mut self) -> VecDeque<Vec<u8>> {
        if let Err(err) = self.note_acknowledged() {
            tracing::warn!(
                "cannot read how far the collector acknowledged ({err}): every line of this connection will be sent again"
            );
        }
        self.frames
    }

    /// Closes the sending side once everything is acknowledged (end of a flush).
    pub fn finish(self) {
        // The collector has every byte already; a failure here changes nothing.
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
    }
}
