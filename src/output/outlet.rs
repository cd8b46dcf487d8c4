//! pidvisor's own stdout and stderr, written without ever blocking the event loop.
//!
//! Whoever reads the container's output (a log driver, a pipe, a terminal) may stop
//! reading; PID 1 must not stop with it. So pidvisor writes through its *own* open file
//! description of descriptors 1 and 2, made non-blocking: it opens `/proc/self/fd/1`, which
//! for a pipe or a terminal gives a new description of the same pipe or terminal, so that
//! its `O_NONBLOCK` leaves the descriptors the main command and the services inherit
//! exactly as they were. A socket (journald, some log drivers) cannot be reopened that
//! way, but needs no private description: each `send` says `MSG_DONTWAIT` itself. A
//! regular file or `/dev/null` never makes a writer wait, and is written as it is. When
//! none of this is possible (no `/proc`, a reopen refused), pidvisor falls back to
//! blocking writes on the inherited descriptor, as it did before.
//!
//! A write that takes only part of what it was given never leaves a line torn: the rest
//! of the line it stopped in becomes the outlet's *carry*, which goes out before anything
//! else, so that another stream's lines cannot land inside it. Whole lines that did not
//! fit stay with whoever offered them (a service's relay keeps a bounded backlog and stops
//! reading its pipe while it is full; see [`crate::output::logs`]).
//!
//! pidvisor's own log lines (stderr) are queued here, up to [`LOG_BACKLOG`] bytes, while
//! stderr is not taking them; beyond that they are dropped and counted, and a later line
//! says how many ([`take_dropped_log_lines`]). The outlets are process-wide (the log
//! writer of `tracing` needs to reach stderr's), behind a mutex that only the one thread
//! ever takes; the log writer only *tries* it, so that a log line written while an outlet
//! is in use is counted as dropped instead of deadlocking.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError, TryLockError};

/// How many bytes of pidvisor's own log lines wait for stderr before new ones are dropped.
pub const LOG_BACKLOG: usize = 64 * 1024;

/// What an emptied buffer (a relay's backlog or unfinished line, an outlet's queue) may
/// keep of its capacity; more than this is freed (see [`release_if_large`]).
const KEPT_CAPACITY: usize = 4096;

/// Which of pidvisor's own streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    Stdout,
    Stderr,
}

impl std::fmt::Display for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Sink::Stdout => "stdout",
            Sink::Stderr => "stderr",
        })
    }
}

impl Sink {
    pub const ALL: [Sink; 2] = [Sink::Stdout, Sink::Stderr];

    fn fd(self) -> RawFd {
        match self {
            Sink::Stdout => libc::STDOUT_FILENO,
            Sink::Stderr => libc::STDERR_FILENO,
        }
    }
}

/// How an outlet writes.
#[derive(Debug)]
enum Mode {
    /// pidvisor's own non-blocking description of the pipe or terminal.
    Private(OwnedFd),
    /// A socket, written with `send(MSG_DONTWAIT)`.
    Socket,
    /// The inherited descriptor, blocking: a regular file, `/dev/null`, or (with the
    /// reason) a pipe or terminal that could not be reopened.
    Blocking { fallback: Option<String> },
}

/// One of pidvisor's output streams.
#[derive(Debug)]
pub struct Outlet {
    sink: Sink,
    mode: Mode,
    /// The rest of a line a write left half-done: it goes out before anything else.
    carry: Vec<u8>,
    /// pidvisor's own log lines waiting for the stream (stderr only).
    log: Vec<u8>,
    /// Whether the event loop is waiting for the stream to become writable.
    pub armed: bool,
}

/// Log lines dropped since the last [`take_dropped_log_lines`].
static DROPPED_LOG_LINES: AtomicU64 = AtomicU64::new(0);

/// The outlet of `sink`, opened on first use.
pub fn lock(sink: Sink) -> MutexGuard<'static, Outlet> {
    cell(sink).lock().unwrap_or_else(PoisonError::into_inner)
}

/// The stream whose outlet `sink` writes through: when stdout and stderr are the same
/// pipe or terminal (`2>&1`), stderr shares stdout's outlet, so that a line one of them
/// has begun is finished before the other writes anything.
pub fn route(sink: Sink) -> Sink {
    static SHARED: OnceLock<bool> = OnceLock::new();
    let shared = || *SHARED.get_or_init(|| is_same_file(libc::STDOUT_FILENO, libc::STDERR_FILENO));
    if sink == Sink::Stderr && shared() {
        Sink::Stdout
    } else {
        sink
    }
}

/// The distinct outlets: stdout's and stderr's, or one shared by both.
pub fn outlets() -> impl Iterator<Item = Sink> {
    Sink::ALL.into_iter().filter(|&sink| route(sink) == sink)
}

fn cell(sink: Sink) -> &'static Mutex<Outlet> {
    static STDOUT: OnceLock<Mutex<Outlet>> = OnceLock::new();
    static STDERR: OnceLock<Mutex<Outlet>> = OnceLock::new();
    let cell = match route(sink) {
        Sink::Stdout => &STDOUT,
        Sink::Stderr => &STDERR,
    };
    cell.get_or_init(|| Mutex::new(Outlet::open(route(sink))))
}

/// Writes one of pidvisor's own log lines to stderr, or queues it, or counts it dropped.
pub fn write_log_line(line: &[u8]) {
    // Never blocks: the lock is only ever taken by this one thread, so a busy lock means
    // a line logged while an outlet is in use.
    let mut outlet = match cell(Sink::Stderr).try_lock() {
        Ok(outlet) => outlet,
        Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        Err(TryLockError::WouldBlock) => {
            DROPPED_LOG_LINES.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    outlet.log_line(line);
}

/// How many of pidvisor's own log lines were dropped since the last call.
pub fn take_dropped_log_lines() -> u64 {
    DROPPED_LOG_LINES.swap(0, Ordering::Relaxed)
}

impl Outlet {
    fn open(sink: Sink) -> Outlet {
        Outlet {
            sink,
            mode: choose_mode(sink.fd()),
            carry: Vec::new(),
            log: Vec::new(),
            armed: false,
        }
    }

    /// The descriptor to wait on for writability.
    pub fn raw_fd(&self) -> RawFd {
        match &self.mode {
            Mode::Private(fd) => fd.as_raw_fd(),
            Mode::Socket | Mode::Blocking { .. } => self.sink.fd(),
        }
    }

    /// Whether writes may be refused (and waiting for writability makes sense).
    pub fn can_stall(&self) -> bool {
        !matches!(self.mode, Mode::Blocking { .. })
    }

    /// Why a pipe or terminal is written blocking (so a stalled reader stalls pidvisor).
    pub fn fallback(&self) -> Option<&str> {
        match &self.mode {
            Mode::Blocking { fallback } => fallback.as_deref(),
            _ => None,
        }
    }

    /// Offers whole lines; returns how many bytes of them were taken (written, or the
    /// end of a line moved to the carry). 0: the stream is not taking anything now.
    pub fn offer(&mut self, lines: &[u8]) -> io::Result<usize> {
        if !self.flush_carry()? || lines.is_empty() {
            return Ok(0);
        }
        let written = match self.write(lines) {
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(0),
            Err(err) => return Err(err),
        };
        if written == lines.len() {
            return Ok(written);
        }
        // Stopped inside a line: the rest of that line becomes the carry.
        let line_end = lines[written..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(lines.len(), |i| written + i + 1);
        self.carry.extend_from_slice(&lines[written..line_end]);
        Ok(line_end)
    }

    /// Writes what the outlet holds itself (the carry, then pidvisor's own log lines);
    /// true when nothing is left.
    pub fn flush_own(&mut self) -> io::Result<bool> {
        let log = std::mem::take(&mut self.log);
        let result = self.offer(&log);
        let taken = match result {
            Ok(taken) => taken,
            // Lines that cannot be written at all are gone.
            Err(_) => log.len(),
        };
        self.log = log;
        self.log.drain(..taken);
        release_if_large(&mut self.log);
        result?;
        Ok(self.carry.is_empty() && self.log.is_empty())
    }

    /// Whether the outlet holds anything itself.
    pub fn has_own_pending(&self) -> bool {
        !self.carry.is_empty() || !self.log.is_empty()
    }

    /// Bytes the outlet holds itself (for the report of what was lost at exit).
    pub fn own_pending_len(&self) -> usize {
        self.carry.len() + self.log.len()
    }

    fn log_line(&mut self, line: &[u8]) {
        if self.log.is_empty()
            && let Ok(taken) = self.offer(line)
        {
            if taken == line.len() {
                return;
            }
            if taken > 0 {
                return self.queue_log(&line[taken..]);
            }
        }
        self.queue_log(line);
    }

    fn queue_log(&mut self, line: &[u8]) {
        if self.log.len() + line.len() > LOG_BACKLOG {
            DROPPED_LOG_LINES.fetch_add(1, Ordering::Relaxed);
        } else {
            self.log.extend_from_slice(line);
        }
    }

    /// Writes the carry; true when it is empty.
    fn flush_carry(&mut self) -> io::Result<bool> {
        while !self.carry.is_empty() {
            let carry = std::mem::take(&mut self.carry);
            let result = self.write(&carry);
            self.carry = carry;
            match result {
                Ok(n) => {
                    self.carry.drain(..n);
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(err) => {
                    self.carry.clear();
                    release_if_large(&mut self.carry);
                    return Err(err);
                }
            }
        }
        release_if_large(&mut self.carry);
        Ok(true)
    }

    /// One write: as much as the stream takes now (all of it, when blocking).
    fn write(&self, bytes: &[u8]) -> io::Result<usize> {
        loop {
            let n = match &self.mode {
                // SAFETY: writes at most bytes.len() bytes from bytes.
                Mode::Private(fd) => unsafe {
                    libc::write(fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len())
                },
                // SAFETY: as above; the flags only make this one call non-blocking.
                Mode::Socket => unsafe {
                    libc::send(
                        self.sink.fd(),
                        bytes.as_ptr().cast(),
                        bytes.len(),
                        libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                    )
                },
                Mode::Blocking { .. } => {
                    return write_all(self.sink.fd(), bytes).map(|()| bytes.len());
                }
            };
            if n >= 0 {
                return Ok(n as usize);
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }
}

/// Frees `buf` once it is empty, if it holds more than [`KEPT_CAPACITY`]: the memory a
/// stall or a long line needed goes back when they are over, instead of staying resident
/// for every stream that once had them.
pub fn release_if_large(buf: &mut Vec<u8>) {
    if buf.is_empty() && buf.capacity() > KEPT_CAPACITY {
        *buf = Vec::new();
    }
}

fn write_all(fd: RawFd, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        // SAFETY: writes at most bytes.len() bytes from bytes.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        bytes = &bytes[n as usize..];
    }
    Ok(())
}

/// A pipe or a terminal gets a private non-blocking description; a socket is sent to
/// with `MSG_DONTWAIT`; anything else is written blocking, as is a pipe or terminal that
/// cannot be reopened.
fn choose_mode(fd: RawFd) -> Mode {
    // SAFETY: `stat` is plain old data, for which all-zero is a valid value.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat writes at most one `stat` into the struct it is given.
    if unsafe { libc::fstat(fd, &mut stat) } != 0 {
        return Mode::Blocking { fallback: None };
    }
    match stat.st_mode & libc::S_IFMT {
        libc::S_IFSOCK => Mode::Socket,
        libc::S_IFIFO | libc::S_IFCHR => match reopen_nonblocking(fd) {
            Ok(private) => Mode::Private(private),
            Err(err) => Mode::Blocking {
                fallback: Some(err.to_string()),
            },
        },
        _ => Mode::Blocking { fallback: None },
    }
}

/// A new open file description of whatever `fd` is, non-blocking and close-on-exec.
fn reopen_nonblocking(fd: RawFd) -> io::Result<OwnedFd> {
    let path = format!("/proc/self/fd/{fd}");
    let c_path = std::ffi::CString::new(path.clone()).map_err(io::Error::other)?;
    let flags = libc::O_WRONLY | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY;
    // SAFETY: a valid NUL-terminated path.
    let new = unsafe { libc::open(c_path.as_ptr(), flags) };
    if new < 0 {
        let err = io::Error::last_os_error();
        return Err(io::Error::new(err.kind(), format!("opening {path}: {err}")));
    }
    // SAFETY: open just returned this descriptor; it has no other owner.
    let new = unsafe { OwnedFd::from_raw_fd(new) };
    if !is_same_file(fd, new.as_raw_fd()) {
        return Err(io::Error::other(format!(
            "{path} is not this process's descriptor"
        )));
    }
    Ok(new)
}

/// Whether two descriptors refer to the same pipe or device (a reopen that got something
/// else, say a `/proc` that is not this process's, is not used).
fn is_same_file(a: RawFd, b: RawFd) -> bool {
    let stat = |fd| {
        // SAFETY: `stat` is plain old data, for which all-zero is a valid value.
        let mut stat: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fstat writes at most one `stat` into the struct it is given.
        (unsafe { libc::fstat(fd, &mut stat) } == 0).then_some((
            stat.st_dev,
            stat.st_ino,
            stat.st_rdev,
        ))
    };
    matches!((stat(a), stat(b)), (Some(x), Some(y)) if x == y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::pipe::Pipe;

    fn outlet_on(pipe: &Pipe) -> Outlet {
        let fd = pipe.write.as_raw_fd();
        Outlet {
            sink: Sink::Stdout,
            mode: Mode::Private(reopen_nonblocking(fd).expect("reopen")),
            carry: Vec::new(),
            log: Vec::new(),
            armed: false,
        }
    }

    fn flags(fd: RawFd) -> libc::c_int {
        // SAFETY: F_GETFL on an open descriptor.
        unsafe { libc::fcntl(fd, libc::F_GETFL) }
    }

    #[test]
    fn the_private_description_is_non_blocking_and_the_inherited_one_is_not() {
        let pipe = Pipe::new().expect("pipe");
        let outlet = outlet_on(&pipe);
        assert!(matches!(outlet.mode, Mode::Private(_)), "{:?}", outlet.mode);
        assert_ne!(flags(outlet.raw_fd()) & libc::O_NONBLOCK, 0);
        assert_eq!(flags(pipe.write.as_raw_fd()) & libc::O_NONBLOCK, 0);
    }

    #[test]
    fn log_lines_wait_up_to_the_bound_then_are_dropped_and_counted() {
        let pipe = Pipe::new().expect("pipe");
        let mut outlet = outlet_on(&pipe);
        let line = [b"pidvisor: INFO ".to_vec(), b"y".repeat(84), b"\n".to_vec()].concat();
        // Enough to fill the pipe, then the backlog, then some.
        let count = (65536 + LOG_BACKLOG) / line.len() + 50;
        take_dropped_log_lines();
        for _ in 0..count {
            outlet.log_line(&line);
        }
        assert!(outlet.log.len() <= LOG_BACKLOG);
        assert!(outlet.log.len() > LOG_BACKLOG - line.len());
        let dropped = take_dropped_log_lines();
        assert!((1..=count as u64).contains(&dropped), "{dropped} dropped");
        assert_eq!(take_dropped_log_lines(), 0, "counted once");
        // Once stderr takes them all, the queue's memory is freed.
        let mut buf = vec![0u8; 1 << 16];
        while !outlet.flush_own().expect("flush") {
            // SAFETY: reads into buf.
            let n =
                unsafe { libc::read(pipe.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            assert!(n > 0);
        }
        assert_eq!(outlet.log.capacity(), 0);
    }

    #[test]
    fn a_full_pipe_takes_whole_lines_and_carries_the_rest_of_a_torn_one() {
        let pipe = Pipe::new().expect("pipe");
        let mut outlet = outlet_on(&pipe);
        let line = [b"x".repeat(4999), b"\n".to_vec()].concat();
        let mut taken_total = 0;
        // Fill the pipe: each offer takes whole lines (a torn one's end goes to the carry).
        loop {
            let taken = outlet.offer(&line).expect("offer");
            if taken == 0 {
                break;
            }
            assert_eq!(taken, line.len(), "only whole lines are taken");
            taken_total += taken;
        }
        assert!(taken_total >= 4096);
        assert!(
            !outlet.carry.is_empty(),
            "the pipe took part of a line: its end is carried"
        );
        // Reading it all lets the carry out first: the stream is whole lines only.
        let mut read_back = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            // SAFETY: reads into buf.
            let n =
                unsafe { libc::read(pipe.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            assert!(n > 0);
            read_back.extend_from_slice(&buf[..n as usize]);
            if outlet.flush_own().expect("flush") {
                break;
            }
        }
        crate::init::pipe::set_nonblocking(&pipe.read).expect("nonblocking");
        // SAFETY: reads into buf.
        let n = unsafe { libc::read(pipe.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            read_back.extend_from_slice(&buf[..n as usize]);
        }
        assert_eq!(read_back.len(), taken_total);
        assert!(read_back.chunks(line.len()).all(|l| l == line.as_slice()));
    }
}
