//! Reading one small configuration file (`service.toml`, `notification-fd`, `/etc/passwd`,
//! `/etc/group`) safely: bounded in size, UTF-8, and never blocking on what is not a file.

use std::fs;
use std::io;
use std::path::Path;

/// Reads a configuration file of at most `limit` bytes without ever blocking: a FIFO (or
/// a device such as /dev/zero) where a file should be is refused, not read for ever
/// before the event loop has even started.
pub fn read_config_file(path: &Path, limit: u64) -> io::Result<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        let message = format!("larger than {limit} bytes");
        return Err(io::Error::new(io::ErrorKind::FileTooLarge, message));
    }
    String::from_utf8(bytes).map_err(|err| {
        let valid = &err.as_bytes()[..err.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
        let message = format!("not UTF-8 (line {line})");
        io::Error::new(io::ErrorKind::InvalidData, message)
    })
}

/// What to do about an error from [`read_config_file`] or from looking a file up.
pub fn fix_for(err: &io::Error) -> &'static str {
    match err.kind() {
        _ if err.raw_os_error() == Some(libc::ELOOP) => {
            "a symbolic link leads back to itself: point it at a real file"
        }
        io::ErrorKind::InvalidInput => "make it a regular file (not a FIFO, device or folder)",
        io::ErrorKind::FileTooLarge => "make it smaller: it holds settings only",
        io::ErrorKind::InvalidData => "save it as UTF-8 text",
        _ => "make it readable by pidvisor (check its permissions)",
    }
}
