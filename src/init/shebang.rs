//! A script's `#!` line: which interpreter it names, and whether that is there. When it is
//! not, `exec` fails with "No such file or directory" although the script exists; this
//! module lets the messages say which file is really missing.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The longest `#!` line read (Linux reads at most 256 bytes of it too).
const MAX_LINE: u64 = 256;

/// The absolute interpreter that `program`'s `#!` line names, if it names one that does
/// not exist. `None` for a binary, an unreadable file, a relative interpreter (resolved
/// against the working directory at `exec`) or one that exists.
pub fn missing_interpreter(program: &Path) -> Option<PathBuf> {
    let interpreter = interpreter(program)?;
    match interpreter.is_absolute() && !interpreter.exists() {
        true => Some(interpreter),
        false => None,
    }
}

/// The interpreter named by `program`'s `#!` line; never blocks (a FIFO is not read).
fn interpreter(program: &Path) -> Option<PathBuf> {
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(program)
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut head = Vec::new();
    file.take(MAX_LINE).read_to_end(&mut head).ok()?;
    let line = head.strip_prefix(b"#!")?.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let name = line.split_ascii_whitespace().next()?;
    Some(PathBuf::from(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(name: &str, text: &str) -> PathBuf {
        let path =
            std::env::temp_dir().join(format!("pidvisor-shebang-{}-{name}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn names_a_missing_interpreter_only() {
        let missing = script("missing", "#! /no/such/interpreter -x\necho\n");
        assert_eq!(
            missing_interpreter(&missing),
            Some(PathBuf::from("/no/such/interpreter"))
        );
        for (name, text) in [
            ("present", "#!/bin/sh\n"),
            ("relative", "#!sh\n"),
            ("binary", "\x7fELF"),
            ("empty", ""),
        ] {
            let path = script(name, text);
            assert_eq!(missing_interpreter(&path), None, "{text:?}");
            std::fs::remove_file(path).unwrap();
        }
        assert_eq!(missing_interpreter(Path::new("/no/such/script")), None);
        std::fs::remove_file(missing).unwrap();
    }
}
