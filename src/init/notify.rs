//! The sd_notify protocol towards whatever started pidvisor (systemd, Podman's
//! `--sdnotify=container`): datagrams like `READY=1` or `STATUS=...` sent to the Unix
//! socket named by `NOTIFY_SOCKET`, a path or, with a leading `@`, an abstract name.
//!
//! Sending never blocks: the socket is non-blocking, and a message the receiver has no
//! room for is dropped (the next one says the newer state anyway).

use std::ffi::OsStr;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// A socket to send notifications to.
pub struct Notifier {
    socket: UnixDatagram,
    to: SocketAddr,
}

impl Notifier {
    /// Opens a socket for `NOTIFY_SOCKET`'s value.
    pub fn open(address: &OsStr) -> io::Result<Notifier> {
        let bytes = address.as_bytes();
        let to = match bytes.strip_prefix(b"@") {
            Some(name) => SocketAddr::from_abstract_name(name)?,
            None if bytes.starts_with(b"/") => SocketAddr::from_pathname(address)?,
            None => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "neither an absolute path nor an @abstract name",
                ));
            }
        };
        let socket = UnixDatagram::unbound()?;
        socket.set_nonblocking(true)?;
        Ok(Notifier { socket, to })
    }

    /// Sends one message (`KEY=VALUE` lines).
    pub fn send(&self, message: &str) -> io::Result<()> {
        self.socket
            .send_to_addr(message.as_bytes(), &self.to)
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_to_a_path_and_to_an_abstract_name() {
        let path =
            std::env::temp_dir().join(format!("pidvisor-notify-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let receiver = UnixDatagram::bind(&path).expect("bind");
        Notifier::open(path.as_os_str())
            .expect("open")
            .send("READY=1")
            .expect("send");
        let mut buf = [0u8; 64];
        let n = receiver.recv(&mut buf).expect("recv");
        assert_eq!(&buf[..n], b"READY=1");
        std::fs::remove_file(&path).expect("cleanup");

        let name = format!("pidvisor-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).expect("abstract");
        let receiver = UnixDatagram::bind_addr(&addr).expect("bind abstract");
        let notifier = Notifier::open(OsStr::new(&format!("@{name}"))).expect("open");
        notifier.send("STOPPING=1").expect("send");
        let n = receiver.recv(&mut buf).expect("recv");
        assert_eq!(&buf[..n], b"STOPPING=1");

        assert!(Notifier::open(OsStr::new("relative.sock")).is_err());
    }
}
