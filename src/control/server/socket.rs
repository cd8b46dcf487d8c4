//! The socket file: created at start (its folder too, mode 0600 from the first moment, a
//! stale one replaced, a live one left alone) and removed at exit, when the clients get a
//! last moment to read what is queued for them.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::epoll::{Epoll, EpollEvent, EpollFlags};
use tracing::debug;

use super::{ControlServer, TOKEN_BIT};

/// How long the clients get, in all, to read what is queued for them when pidvisor exits.
const EXIT_FLUSH: Duration = Duration::from_millis(200);

impl ControlServer {
    /// Creates the socket at `path` (its folder too, if missing), mode 0600, replacing a
    /// stale socket left by an earlier run (but not one that another process still
    /// listens on), and registers it with `epoll`.
    pub fn bind(path: &Path, epoll: &Epoll) -> io::Result<ControlServer> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(dir)
                .map_err(|e| {
                    io::Error::new(e.kind(), format!("creating {}: {e}", dir.display()))
                })?;
            check_folder(dir)?;
        }
        match fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_socket() => {
                // Live (another pidvisor answers there) or stale (left by an earlier run)?
                if UnixStream::connect(path).is_ok() {
                    return Err(io::Error::new(
                        io::ErrorKind::AddrInUse,
                        format!("another process listens on {}", path.display()),
                    ));
                }
                fs::remove_file(path).map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("removing the stale {}: {e}", path.display()),
                    )
                })?;
            }
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a socket", path.display()),
                ));
            }
            Err(_) => {}
        }
        // The socket file is created with the process umask: make it 0600 from the start,
        // so that there is no moment when others may connect.
        // SAFETY: umask only swaps the process's file mode mask; no thread runs meanwhile.
        let old_mask = unsafe { libc::umask(0o177) };
        let bound = UnixListener::bind(path);
        // SAFETY: as above, restoring the mask the children inherit.
        unsafe { libc::umask(old_mask) };
        let listener =
            bound.map_err(|e| io::Error::new(e.kind(), format!("bind {}: {e}", path.display())))?;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
        listener.set_nonblocking(true)?;
        epoll
            .add(
                listener.as_fd(),
                EpollEvent::new(EpollFlags::EPOLLIN, TOKEN_BIT),
            )
            .map_err(|e| io::Error::other(format!("epoll_ctl(control socket): {e}")))?;
        debug!("control socket: {}", path.display());
        Ok(ControlServer {
            listener,
            path: path.to_owned(),
            // SAFETY: geteuid has no preconditions.
            own_uid: unsafe { libc::geteuid() },
            clients: BTreeMap::new(),
            next_id: 1,
            paused_until: None,
            accept_failing: false,
        })
    }
}

/// Refuses a folder in which someone else could replace the socket with their own (and
/// so receive the requests of `pidvisorctl`, or answer them): one owned by another user
/// than root or pidvisor's, or writable by group or others without the sticky bit (which
/// stops them from removing or renaming pidvisor's files, as in /tmp).
fn check_folder(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::metadata(dir)?;
    let own_uid = nix::unistd::geteuid().as_raw();
    let mode = meta.mode() & 0o7777;
    let problem = if meta.uid() != 0 && meta.uid() != own_uid {
        format!(
            "it belongs to uid {}, who could replace the socket",
            meta.uid()
        )
    } else if mode & 0o022 != 0 && mode & 0o1000 == 0 {
        format!("it is writable by others (mode {mode:04o}), who could replace the socket")
    } else {
        return Ok(());
    };
    Err(io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!(
            "refusing {} for the control socket: {problem}; make it pidvisor's own and \
             not writable by others (chmod go-w), or choose another folder with --socket",
            dir.display()
        ),
    ))
}

impl Drop for ControlServer {
    /// pidvisor is exiting: nobody will answer on this path any more. What is still
    /// queued for the clients (the `exit` event, a last reply) gets [`EXIT_FLUSH`] in all
    /// to go out.
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
        let deadline = Instant::now() + EXIT_FLUSH;
        loop {
            let mut waiting = Vec::new();
            for client in self.clients.values_mut() {
                while client.pending() > 0 {
                    match (&client.stream).write(&client.output[client.written..]) {
                        Ok(n) if n > 0 => client.written += n,
                        Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                        // Gone, or not taking anything: give up on this one.
                        _ => client.written = client.output.len(),
                    }
                }
                if client.pending() > 0 {
                    waiting.push(libc::pollfd {
                        fd: client.stream.as_raw_fd(),
                        events: libc::POLLOUT,
                        revents: 0,
                    });
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if waiting.is_empty() || left.is_zero() {
                return;
            }
            // SAFETY: `waiting` is a valid array of pollfd of the length given.
            let ready = unsafe {
                libc::poll(
                    waiting.as_mut_ptr(),
                    waiting.len() as libc::nfds_t,
                    left.as_millis().clamp(1, 1000) as libc::c_int,
                )
            };
            if ready <= 0 {
                return;
            }
        }
    }
}
