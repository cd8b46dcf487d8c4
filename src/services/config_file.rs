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
        return Err(io::Error::other("not a regular file"));
    }
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(io::Error::other(format!("larger than {limit} bytes")));
    }
    String::from_utf8(bytes).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8"))
}
