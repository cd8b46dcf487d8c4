//! Service output: whole lines, prefixed with the service's name, relayed to pidvisor's own
//! stdout or stderr; and the pipes that feed a service's logger.
//!
//! Each relayed stream is a pipe created once per service, whose read end pidvisor keeps
//! for its whole life: nothing written between two runs is lost and a restart needs no new
//! pipe. pidvisor does not keep the write end: the first run takes the one the pipe was
//! made with, and each later run gets one opened anew through `/proc/self/fd` (where /proc
//! cannot do that, the write end is kept). That halves the descriptors pidvisor holds per
//! service, and the first start, the one all services make together at start-up, does
//! not pay for the open (17 µs each with a hundred services starting, in a profile of
//! `bench/floor.py`'s run). Once no process holds a write end, the pipe reports
//! end-of-file and the event loop stops watching it until the next run (an epoll set
//! reports a hang-up whatever it was asked for). pidvisor reads whatever is there,
//! writes out every complete line as `name | line` (one `write` for a whole batch of
//! lines, and never a torn line, since all relayed output goes through this one thread),
//! and keeps a partial last line until its newline arrives. A partial line longer than
//! [`MAX_PENDING`] is flushed as a line of its own, so a service that never writes a
//! newline costs bounded memory.
//!
//! The lines go out through [`crate::output::outlet`], which never blocks. When the reader of the
//! container's output is slow or stalled, the lines a write could not take wait in the
//! relay's backlog; once that holds [`BACKLOG_LIMIT`] bytes or more, the relay stops
//! reading its pipe (the event loop stops asking for it), so that the service itself
//! blocks in `write` once the pipe is full, as it would under s6. No line is torn and none
//! is dropped; on the fast path (the stream takes everything) nothing is copied twice.
//!
//! A run that exits while its relay's backlog is full leaves its last bytes in the pipe,
//! where the next run's output will follow them. The relay then notes how many bytes the
//! pipe holds at the exit (a run end), and when its reading reaches that point, ends the
//! unfinished line there: it goes out as a line of its own, as at any other exit.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::OnceLock;

use crate::init::limits;
use crate::init::pipe::{Pipe, reopen_write_end, set_nonblocking, unread_bytes};
pub use crate::output::outlet::Sink;
use crate::output::outlet::{self, release_if_large};

/// The longest partial line kept per stream before it is flushed as a line anyway.
pub const MAX_PENDING: usize = 16 * 1024;

/// How much one readiness event reads per stream, so that one flooding service cannot
/// starve the others (epoll is level-triggered: the rest is read on the next round).
const READ_CHUNK: usize = 64 * 1024;

/// While a relay's backlog (lines its sink has not taken yet) holds this much, the relay
/// reads no more: at most this plus one read's lines wait per stream.
pub const BACKLOG_LIMIT: usize = 64 * 1024;

/// The most chunks [`LineRelay::drain`] reads: more than a pipe holds (1 MiB at most for
/// an unprivileged process), so that only a writer that is still writing hits it.
const DRAIN_CHUNKS: usize = 17;

/// The pipe from a service's stdout to its logger's stdin. pidvisor holds both ends for
/// its whole life, so that a restart of either side loses nothing; at shutdown, once the
/// service is down, it closes its write end, so that the logger reads the last lines and
/// then end-of-file (s6's way to stop a logger without losing its input).
pub struct LogPipe {
    read: OwnedFd,
    write: RefCell<Option<OwnedFd>>,
}

impl LogPipe {
    pub fn new() -> io::Result<LogPipe> {
        let Pipe { read, write } = Pipe::new()?;
        Ok(LogPipe {
            read,
            write: RefCell::new(Some(write)),
        })
    }

    /// A copy of the write end for the service's stdout.
    pub fn writer_for_child(&self) -> io::Result<OwnedFd> {
        match &*self.write.borrow() {
            Some(write) => write.try_clone(),
            None => Err(io::Error::other("the log pipe is closed (shutting down)")),
        }
    }

    /// A copy of the read end for the logger's stdin.
    pub fn reader_for_child(&self) -> io::Result<OwnedFd> {
        self.read.try_clone()
    }

    /// Closes pidvisor's write end for good.
    pub fn close_write_end(&self) {
        self.write.borrow_mut().take();
    }
}

/// One service stream relayed line by line with a name prefix.
pub struct LineRelay {
    read: OwnedFd,
    /// The write end, kept only where /proc cannot open the pipe anew for each run.
    kept_write: Option<OwnedFd>,
    /// The write end the pipe was made with, until the first run takes it; not kept
    /// where descriptors are short (see [`limits::room_to_keep`]); a first run then opens
    /// its write end as later runs do.
    first_writer: Option<OwnedFd>,
    prefix: Box<[u8]>,
    sink: Sink,
    /// The start of a line whose newline has not arrived yet.
    pending: Vec<u8>,
    /// Whole lines the sink has not taken yet, oldest first.
    backlog: Vec<u8>,
    /// Whether the pipe is in the event loop's epoll set (see [`LineRelay::wants_reading`]).
    pub watched: bool,
    /// A read found end-of-file: no process holds a write end until the next run.
    writers_gone: bool,
    /// Runs that exited with bytes still in the pipe: how many bytes each one's output
    /// ends after the previous one's (the first: after what has been read). At least one
    /// byte each, so never more than the pipe holds.
    run_ends: VecDeque<usize>,
}

impl LineRelay {
    pub fn new(service: &str, sink: Sink) -> io::Result<LineRelay> {
        let Pipe { read, write } = Pipe::new()?;
        set_nonblocking(&read)?;
        let (kept_write, first_writer) = match can_reopen(&read) {
            false => (Some(write), None),
            true => (
                None,
                limits::room_to_keep(write.as_raw_fd()).then_some(write),
            ),
        };
        Ok(LineRelay {
            read,
            kept_write,
            first_writer,
            prefix: format!("{service} | ").into_bytes().into_boxed_slice(),
            sink,
            pending: Vec::new(),
            backlog: Vec::new(),
            watched: false,
            writers_gone: false,
            run_ends: VecDeque::new(),
        })
    }

    /// A write end for a run of the service (its `run` or `finish`).
    pub fn writer_for_child(&mut self) -> io::Result<OwnedFd> {
        let writer = match (self.first_writer.take(), &self.kept_write) {
            (Some(first), _) => Ok(first),
            (None, Some(write)) => write.try_clone(),
            (None, None) => reopen_write_end(&self.read),
        };
        if writer.is_ok() {
            self.writers_gone = false;
        }
        writer
    }

    /// Whether the event loop should watch the pipe: not while the backlog is full (the
    /// service then blocks on its full pipe), nor once every writer is gone (the pipe
    /// would report its hang-up at every wait).
    pub fn wants_reading(&self) -> bool {
        !self.is_backed_up() && !self.writers_gone
    }

    pub fn sink(&self) -> Sink {
        self.sink
    }

    /// Reads what is available (up to one chunk) and writes out every complete line.
    /// `scratch` is a buffer shared by all relays, to keep per-service memory small.
    pub fn relay(&mut self, scratch: &mut Scratch) -> io::Result<()> {
        self.relay_chunk(scratch).map(|_| ())
    }

    /// Whether the backlog is full: the relay reads nothing until its sink takes some.
    pub fn is_backed_up(&self) -> bool {
        self.backlog.len() >= BACKLOG_LIMIT
    }

    /// Whether lines wait for the sink.
    pub fn has_backlog(&self) -> bool {
        !self.backlog.is_empty()
    }

    /// Bytes waiting for the sink.
    pub fn backlog_len(&self) -> usize {
        self.backlog.len()
    }

    /// Offers the backlog to the sink; true when it is empty. Lines the sink refuses with
    /// an error (not "would block") are dropped, as there is nowhere to put them.
    pub fn flush(&mut self) -> io::Result<bool> {
        if self.backlog.is_empty() {
            return Ok(true);
        }
        let result = outlet::lock(self.sink).offer(&self.backlog);
        match result {
            Ok(taken) => {
                self.backlog.drain(..taken);
                release_if_large(&mut self.backlog);
                Ok(self.backlog.is_empty())
            }
            Err(err) => {
                self.backlog.clear();
                release_if_large(&mut self.backlog);
                Err(err)
            }
        }
    }

    /// Relays everything the pipe holds, then the unfinished last line (if any) as a line
    /// of its own: for when its writer has exited, so that nothing it wrote is lost or
    /// glued to the next run's first line. Reads at most [`DRAIN_CHUNKS`] chunks, so that
    /// a process still writing (a child the service left behind) cannot hold the loop;
    /// when that limit is hit, the unfinished line stays pending, since more of it may
    /// come. When the backlog is full, the pipe is not read: the exit is noted as a run
    /// end, and the line ends there once reading gets that far.
    pub fn drain(&mut self, scratch: &mut Scratch) -> io::Result<()> {
        let mut emptied = false;
        for _ in 0..DRAIN_CHUNKS {
            if self.is_backed_up() {
                return self.note_run_end(scratch);
            }
            if self.relay_chunk(scratch)? == 0 {
                emptied = true;
                break;
            }
        }
        if emptied {
            self.end_pending_line(scratch)?;
        }
        Ok(())
    }

    /// The writer exited while the backlog is full: ends its unfinished line now if the
    /// pipe holds nothing more, or once what it holds has been read.
    fn note_run_end(&mut self, scratch: &mut Scratch) -> io::Result<()> {
        let noted: usize = self.run_ends.iter().sum();
        match unread_bytes(&self.read)?.saturating_sub(noted) {
            0 if noted == 0 => self.end_pending_line(scratch),
            0 => Ok(()),
            more => {
                self.run_ends.push_back(more);
                Ok(())
            }
        }
    }

    /// Writes out the unfinished line, if any, as a line of its own.
    fn end_pending_line(&mut self, scratch: &mut Scratch) -> io::Result<()> {
        scratch.out.clear();
        self.take_pending_line(&mut scratch.out);
        if scratch.out.is_empty() {
            return Ok(());
        }
        self.write_out(&scratch.out)
    }

    /// Appends the unfinished line, if any, to `out` as a whole line.
    fn take_pending_line(&mut self, out: &mut Vec<u8>) {
        if !self.pending.is_empty() {
            out.extend_from_slice(&self.prefix);
            out.append(&mut self.pending);
            release_if_large(&mut self.pending);
            out.push(b'\n');
        }
    }

    /// One read and its complete lines; returns how many bytes were read (0: none left,
    /// or the backlog is full). A read stops at the next run end, which ends the
    /// unfinished line.
    fn relay_chunk(&mut self, scratch: &mut Scratch) -> io::Result<usize> {
        if self.is_backed_up() {
            return Ok(0);
        }
        let want = self
            .run_ends
            .front()
            .map_or(READ_CHUNK, |&end| end.min(READ_CHUNK));
        let n = match read_some(&self.read, &mut scratch.read, want) {
            Ok(0) => {
                self.writers_gone = true;
                0
            }
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(0),
            Err(err) => return Err(err),
        };
        scratch.out.clear();
        format_lines(
            &self.prefix,
            &mut self.pending,
            &scratch.read,
            &mut scratch.out,
        );
        if let Some(end) = self.run_ends.front_mut() {
            *end -= n;
            if *end == 0 {
                self.run_ends.pop_front();
                self.take_pending_line(&mut scratch.out);
            }
        }
        if !scratch.out.is_empty() {
            self.write_out(&scratch.out)?;
        }
        Ok(n)
    }

    /// Writes whole lines after the backlog; what the sink does not take joins it.
    fn write_out(&mut self, bytes: &[u8]) -> io::Result<()> {
        let taken = if self.flush()? {
            outlet::lock(self.sink).offer(bytes)?
        } else {
            0
        };
        self.backlog.extend_from_slice(&bytes[taken..]);
        Ok(())
    }
}

impl AsFd for LineRelay {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }
}

/// Whether this process can open a pipe anew through `/proc/self/fd` (tried once, on
/// the first relay's pipe): where it cannot, every relay keeps its write end.
fn can_reopen(read: &OwnedFd) -> bool {
    static CAN: OnceLock<bool> = OnceLock::new();
    *CAN.get_or_init(|| reopen_write_end(read).is_ok())
}

/// Buffers shared by every relay: one read chunk and one output batch.
#[derive(Default)]
pub struct Scratch {
    read: Vec<u8>,
    out: Vec<u8>,
}

/// Appends to `out` every line completed by `input`, each as `prefix line\n`, and keeps
/// the unfinished rest in `pending`. A line longer than MAX_PENDING goes out in pieces of
/// MAX_PENDING bytes, each as a line of its own, however the input was chunked (so the
/// output does not depend on how the reads happened to split it).
fn format_lines(prefix: &[u8], pending: &mut Vec<u8>, mut input: &[u8], out: &mut Vec<u8>) {
    while !input.is_empty() {
        // Room left in the current piece; a newline right after a full piece ends it.
        let room = MAX_PENDING.saturating_sub(pending.len());
        let window = &input[..input.len().min(room + 1)];
        let (piece, rest) = match window.iter().position(|&b| b == b'\n') {
            Some(newline) => (&input[..=newline], &input[newline + 1..]),
            None if input.len() > room => (&input[..room], &input[room..]),
            None => {
                pending.extend_from_slice(input);
                return;
            }
        };
        out.extend_from_slice(prefix);
        out.append(pending);
        release_if_large(pending);
        out.extend_from_slice(piece);
        if piece.last() != Some(&b'\n') {
            out.push(b'\n');
        }
        input = rest;
    }
}

/// Reads up to `want` bytes into `buf`, which then holds just what was read. The buffer is
/// not zero-filled first: the pages of a chunk that a short read does not reach are never
/// touched, so they never become resident.
fn read_some(fd: &OwnedFd, buf: &mut Vec<u8>, want: usize) -> io::Result<usize> {
    buf.clear();
    buf.reserve(want);
    loop {
        // SAFETY: `buf` has room for `want` bytes; `read` writes at most that many.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), want) };
        if n >= 0 {
            // SAFETY: `read` initialised the first n (<= want <= capacity) bytes.
            unsafe { buf.set_len(n as usize) };
            return Ok(n as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn format(pending: &mut Vec<u8>, input: &str) -> String {
        let mut out = Vec::new();
        format_lines(b"web | ", pending, input.as_bytes(), &mut out);
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn prefixes_every_complete_line() {
        let mut pending = Vec::new();
        assert_eq!(format(&mut pending, "a\nb\n"), "web | a\nweb | b\n");
        assert!(pending.is_empty());
    }

    #[test]
    fn keeps_a_partial_line_until_its_newline_arrives() {
        let mut pending = Vec::new();
        assert_eq!(format(&mut pending, "hel"), "");
        assert_eq!(format(&mut pending, "lo\nwor"), "web | hello\n");
        assert_eq!(format(&mut pending, "ld\n"), "web | world\n");
    }

    #[test]
    fn flushes_an_endless_line_in_bounded_pieces() {
        let mut pending = Vec::new();
        let long = "x".repeat(MAX_PENDING * 2 + 10);
        let out = format(&mut pending, &long);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(
            lines
                .iter()
                .all(|l| l.len() == "web | ".len() + MAX_PENDING)
        );
        assert_eq!(pending.len(), 10);
    }

    #[test]
    fn long_lines_come_out_in_the_same_pieces_however_the_input_is_chunked() {
        let mut text = String::new();
        for len in [
            0,
            5,
            MAX_PENDING - 1,
            MAX_PENDING,
            MAX_PENDING + 1,
            3 * MAX_PENDING + 7,
        ] {
            text.push_str(&"x".repeat(len));
            text.push('\n');
        }
        let whole = format(&mut Vec::new(), &text);
        for chunk in [1, 7, 4096, MAX_PENDING, 65536] {
            let mut pending = Vec::new();
            let pieces: String = text
                .as_bytes()
                .chunks(chunk)
                .map(|c| format(&mut pending, std::str::from_utf8(c).expect("ascii")))
                .collect();
            assert!(pieces == whole, "chunks of {chunk} give other lines");
            assert!(pending.is_empty());
        }
        let lengths: Vec<usize> = whole.lines().map(|l| l.len() - "web | ".len()).collect();
        let max = MAX_PENDING;
        assert_eq!(lengths, [0, 5, max - 1, max, max, 1, max, max, max, 7]);
    }

    #[test]
    fn relays_through_a_real_pipe() {
        let mut relay = LineRelay::new("svc", Sink::Stdout).expect("pipe");
        let mut writer = std::fs::File::from(relay.writer_for_child().expect("writer"));
        writer.write_all(b"one\ntw").expect("write");
        let mut scratch = Scratch::default();
        relay.relay(&mut scratch).expect("relay");
        assert_eq!(relay.pending, b"tw");
        // Nothing more to read: a non-blocking read says so without error.
        relay.relay(&mut scratch).expect("empty relay");
        writer.write_all(b"o\nthree").expect("write");
        relay.drain(&mut scratch).expect("drain");
        assert!(relay.pending.is_empty(), "the unfinished line went out");
    }

    #[test]
    fn the_first_run_takes_the_write_end_the_pipe_was_made_with() {
        let mut relay = LineRelay::new("svc", Sink::Stdout).expect("pipe");
        let mut scratch = Scratch::default();
        assert_eq!(relay.relay_chunk(&mut scratch).expect("read"), 0);
        assert!(
            relay.wants_reading(),
            "no end-of-file before the first run: its write end is held for it"
        );
        let mut first = std::fs::File::from(relay.writer_for_child().expect("first writer"));
        first.write_all(b"first\n").expect("write");
        drop(first);
        relay.drain(&mut scratch).expect("drain");
        assert!(
            !relay.wants_reading(),
            "end-of-file once the first run is gone: pidvisor kept no copy"
        );
    }

    #[test]
    fn a_pipe_without_writers_is_not_watched_until_the_next_run_reopens_it() {
        let mut relay = LineRelay::new("svc", Sink::Stdout).expect("pipe");
        assert!(relay.wants_reading());
        let mut first = std::fs::File::from(relay.writer_for_child().expect("first writer"));
        first.write_all(b"first\n").expect("write");
        drop(first);
        let mut scratch = Scratch::default();
        relay.drain(&mut scratch).expect("drain");
        assert!(
            !relay.wants_reading(),
            "end-of-file: nobody can write until a new run"
        );
        let mut second = std::fs::File::from(relay.writer_for_child().expect("reopened"));
        assert!(relay.wants_reading());
        second.write_all(b"second\n").expect("write");
        assert_eq!(relay.relay_chunk(&mut scratch).expect("read"), 7);
        assert_eq!(
            scratch.read, b"second\n",
            "the same pipe, written by the new run"
        );
        assert!(relay.wants_reading(), "a writer is still open");
    }
}
