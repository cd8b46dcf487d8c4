//! Cuts the bytes read from stdin into lines, each at most `max` bytes.
//!
//! A longer line is cut at `max` bytes and gets the marker ` [logfwd: cut N bytes]`
//! (N counts what was left out), so memory stays bounded whatever arrives: a 1 MiB line
//! costs `max` bytes, not 1 MiB. The bytes are not interpreted: invalid UTF-8 passes
//! through as it is. A last line without a newline is a line at end of input.

pub struct LineSplitter {
    max: usize,
    line: Vec<u8>,
    /// Bytes of the current line left out because it is longer than `max`.
    cut: u64,
}

impl LineSplitter {
    pub fn new(max: usize) -> LineSplitter {
        LineSplitter {
            max,
            line: Vec::new(),
            cut: 0,
        }
    }

    /// Hands every line completed by `chunk` (without its newline) to `emit`.
    pub fn feed(&mut self, mut chunk: &[u8], mut emit: impl FnMut(&[u8])) {
        while !chunk.is_empty() {
            let end = chunk.iter().position(|&b| b == b'\n');
            let piece = &chunk[..end.unwrap_or(chunk.len())];
            let room = self.max - self.line.len();
            let kept = piece.len().min(room);
            self.line.extend_from_slice(&piece[..kept]);
            self.cut += (piece.len() - kept) as u64;
            match end {
                Some(end) => {
                    self.emit_line(&mut emit);
                    chunk = &chunk[end + 1..];
                }
                None => break,
            }
        }
    }

    /// End of input: the last line, if it had no newline.
    pub fn finish(&mut self, mut emit: impl FnMut(&[u8])) {
        if !self.line.is_empty() || self.cut > 0 {
            self.emit_line(&mut emit);
        }
    }

    fn emit_line(&mut self, emit: &mut impl FnMut(&[u8])) {
        if self.cut > 0 {
            let marker = format!(" [logfwd: cut {} bytes]", self.cut);
            self.line.extend_from_slice(marker.as_bytes());
        }
        emit(&self.line);
        self.line.clear();
        self.cut = 0;
    }
}
