//! The limit on open files: pidvisor holds a few pipe ends per service (output relays,
//! logger pipes), so the soft `RLIMIT_NOFILE` a container often starts with (1024 under
//! containerd 2) would stop it from starting a few hundred services. It raises its own
//! soft limit to the hard one at start-up, and every child gets back the soft limit
//! pidvisor was started with: programs that use `select()` break above 1024 descriptors,
//! which is why the soft limit is low in the first place (systemd does the same).
//!
//! Under a hard limit too low for every service, pidvisor keeps a reserve of descriptors
//! free while it makes the services' pipes ([`HeldDescriptors`]): the services that do not
//! fit are left out, and the others can still be started and restarted.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The soft limit pidvisor was started with, for its children; `u64::MAX` until raised
/// (children then keep whatever pidvisor has, which is the same).
static CHILDREN_SOFT_LIMIT: AtomicU64 = AtomicU64::new(u64::MAX);

/// Raises the soft limit to the hard one. Returns the old and new soft limits if it
/// changed anything.
pub fn raise_open_files_limit() -> io::Result<Option<(u64, u64)>> {
    let mut limit = current()?;
    if limit.rlim_cur >= limit.rlim_max {
        return Ok(None);
    }
    let original = limit.rlim_cur;
    limit.rlim_cur = limit.rlim_max;
    // SAFETY: setrlimit gets a valid pointer to an initialised rlimit.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    CHILDREN_SOFT_LIMIT.store(original, Ordering::Relaxed);
    Ok(Some((original, limit.rlim_max)))
}

/// The limit a child gets: the soft limit pidvisor was started with, under the hard limit
/// of now. `None`: the same as pidvisor's (it raised nothing).
pub fn for_child() -> io::Result<Option<libc::rlimit>> {
    let soft = CHILDREN_SOFT_LIMIT.load(Ordering::Relaxed);
    if soft == u64::MAX {
        return Ok(None);
    }
    let mut limit = current()?;
    limit.rlim_cur = soft.min(limit.rlim_max);
    Ok(Some(limit))
}

/// pidvisor's own (soft) limit on open files now; 0 if it cannot be read.
pub fn open_files() -> u64 {
    current().map_or(0, |limit| limit.rlim_cur)
}

fn current() -> io::Result<libc::rlimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into a valid rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(limit)
}

/// Descriptors held back while pidvisor makes the pipes it keeps for its whole life, so
/// that running the services (each spawn's copies and error pipe, readiness pipes, probes,
/// control clients) still finds some free under a low hard limit. Released on drop.
pub struct HeldDescriptors {
    held: Vec<OwnedFd>,
}

impl HeldDescriptors {
    /// Holds up to `count` copies of `fd` (fewer if the limit is reached first).
    pub fn hold(fd: BorrowedFd<'_>, count: usize) -> HeldDescriptors {
        let mut held = HeldDescriptors { held: Vec::new() };
        held.hold_more(fd, count);
        held
    }

    /// Holds up to `count` more copies of `fd`.
    pub fn hold_more(&mut self, fd: BorrowedFd<'_>, count: usize) {
        self.held
            .extend((0..count).map_while(|_| fd.try_clone_to_owned().ok()));
    }
}

/// Whether pidvisor may keep descriptor `fd` open to save work later (a pipe's first write
/// end, a cgroup's folder): while its number is under half the open-files limit.
/// Descriptors are numbered lowest free first, so that is about the count in use: under a
/// low limit, the services' pipes and starts keep the room.
pub fn room_to_keep(fd: RawFd) -> bool {
    static HALF_LIMIT: OnceLock<u64> = OnceLock::new();
    let half = *HALF_LIMIT.get_or_init(|| open_files() / 2);
    u64::try_from(fd).is_ok_and(|fd| fd < half)
}

/// The fix to name when a system call fails for want of descriptors (EMFILE, ENFILE).
pub fn out_of_descriptors_hint(err: &io::Error) -> Option<String> {
    let limit = current().map(|l| l.rlim_max).unwrap_or(0);
    match err.raw_os_error() {
        Some(libc::EMFILE) => Some(format!(
            "the open files limit ({limit}) is too low for this many services: raise it \
             (docker run --ulimit nofile=N, ulimit -Hn N) or run fewer services"
        )),
        Some(libc::ENFILE) => Some(
            "the system-wide table of open files is full (fs.file-max): raise it or close \
             files elsewhere"
                .to_owned(),
        ),
        _ => None,
    }
}
