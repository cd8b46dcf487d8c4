//! The lines waiting to be sent, as framed messages, oldest first, bounded in lines and
//! in bytes. While the collector is unreachable, a new line that does not fit pushes the
//! oldest lines out; the caller gets their count, and reports it (in a log line and to
//! the collector). While it is connected but slower than the input, the caller stops
//! reading instead (`is_full`), and the last chunk read may overshoot the bound.
//!
//! Lines a lost connection gives back (sent, never acknowledged) return to the front,
//! and the bound applies to them too: if the buffer is full they are the oldest, so
//! they are the ones dropped.

use std::collections::VecDeque;

pub struct Backlog {
    frames: VecDeque<Vec<u8>>,
    bytes: usize,
    max_lines: usize,
    max_bytes: usize,
}

impl Backlog {
    pub fn new(max_lines: usize, max_bytes: usize) -> Backlog {
        Backlog {
            frames: VecDeque::new(),
            bytes: 0,
            max_lines,
            max_bytes,
        }
    }

    /// Adds a new line at the back; with `drop_oldest`, enforces the bound and returns
    /// how many old lines it pushed out.
    pub fn push(&mut self, frame: Vec<u8>, drop_oldest: bool) -> u64 {
        self.bytes += frame.len();
        self.frames.push_back(frame);
        if drop_oldest { self.trim() } else { 0 }
    }

    /// Whether the bound is reached: time to stop taking lines, or to drop old ones.
    pub fn is_full(&self) -> bool {
        self.frames.len() >= self.max_lines || self.bytes >= self.max_bytes
    }

    /// Puts lines back at the front, in their order (they are older than every line
    /// here); returns how many lines the bound pushed out.
    pub fn requeue(&mut self, frames: impl DoubleEndedIterator<Item = Vec<u8>>) -> u64 {
        for frame in frames.rev() {
            self.bytes += frame.len();
            self.frames.push_front(frame);
        }
        self.trim()
    }

    pub fn pop(&mut self) -> Option<Vec<u8>> {
        let frame = self.frames.pop_front()?;
        self.bytes -= frame.len();
        Some(frame)
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Drops the oldest lines until the bound holds; the newest line always stays (a
    /// single line may exceed `max_bytes` when `--max-line` is larger).
    fn trim(&mut self) -> u64 {
        let mut dropped = 0;
        while self.frames.len() > 1
            && (self.frames.len() > self.max_lines || self.bytes > self.max_bytes)
        {
            self.pop();
            dropped += 1;
        }
        dropped
    }
}
