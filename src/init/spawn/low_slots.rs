//! Low descriptor numbers kept for children that share pidvisor's descriptor table.
//!
//! A child started with `clone` gets a copy of pidvisor's whole descriptor table, and its
//! `exec` closes every close-on-exec descriptor of that copy again: with a thousand
//! services, pidvisor holds two thousand pipe ends, and that copying and closing was most
//! of the cost of starting a service (`bench/floor.py --modes`: the `files` mode against
//! `clonevm`). So where pidvisor can, a child shares pidvisor's table (`CLONE_FILES`) and
//! its first act is `close_range(cutoff, ~0, CLOSE_RANGE_UNSHARE)`, which gives it a table
//! of its own holding only the numbers below `cutoff`: pidvisor's own first descriptors,
//! those it inherited (which its children inherit in turn), and these slots.
//!
//! Taken once, before the services' pipes are made, the slots come in groups, one per
//! start under way: a start copies what its child needs (stdin, stdout, stderr, the
//! notification descriptor, the report pipe) into a free group with `dup3`, and the child
//! takes them from there. The group stays the child's until the child has a table of its
//! own (it says so through a word the kernel also clears when it execs or dies: see
//! `fork`); then [`Lease`]'s drop puts `/dev/null` back in every slot, which also closes
//! pidvisor's copies (the report pipe reports end-of-file only once they are gone). When
//! no group is free, a start copies the table as before.

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Mutex;

/// What a child may need: its stdin, stdout, stderr, notification descriptor and report
/// pipe, in that order.
pub(super) const SLOTS: usize = 5;

/// `CLOSE_RANGE_UNSHARE` from linux/close_range.h.
pub(super) const CLOSE_RANGE_UNSHARE: libc::c_uint = 2;

/// Under a lower limit on open files, no slot is taken: every descriptor is kept for the
/// services' pipes (see `limits`).
const MIN_OPEN_FILES: u64 = 1024;

struct Pool {
    /// One more than every slot and every descriptor open when they were taken.
    cutoff: i32,
    /// `/dev/null` (the one spawns keep), put back in a slot when its child is done with
    /// it.
    placeholder: RawFd,
    groups: Vec<Group>,
}

struct Group {
    /// [`SLOTS`] of them.
    fds: Box<[OwnedFd]>,
    busy: bool,
}

static POOL: Mutex<Option<Pool>> = Mutex::new(None);

/// Takes `groups` groups of slots, if the open-files limit allows and `/proc/self/fd`
/// tells which descriptors are open; otherwise children go on copying the table. Once
/// only: a second call changes nothing.
pub fn reserve(groups: usize) -> io::Result<()> {
    if crate::init::limits::open_files() < MIN_OPEN_FILES || groups == 0 || lock().is_some() {
        return Ok(());
    }
    // The child's first act must work: a seccomp filter may refuse `close_range` (older
    // Docker profiles), and `unshare`, the child's fallback, needs CAP_SYS_ADMIN there.
    // On pidvisor's own table, shared with nobody, the call closes nothing.
    // SAFETY: close_range of the empty range [MAX, MAX]: no descriptor is touched.
    let probe = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            u32::MAX,
            u32::MAX,
            CLOSE_RANGE_UNSHARE,
        )
    };
    if probe != 0 {
        return Err(io::Error::last_os_error());
    }
    let placeholder = super::dev_null()?;
    // Listed before the slots are taken: each entry listed costs the kernel a lookup (3-4
    // µs), and a whole slice of slots is 160 of them.
    let highest_open = fs::read_dir("/proc/self/fd")?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .max()
        .unwrap_or(0);
    // SAFETY: the kept `/dev/null` stays open for pidvisor's whole life.
    let null = unsafe { BorrowedFd::borrow_raw(placeholder) };
    let taken = (0..groups)
        .map(|_| {
            let fds = (0..SLOTS)
                .map(|_| null.try_clone_to_owned())
                .collect::<io::Result<_>>()?;
            Ok(Group { fds, busy: false })
        })
        .collect::<io::Result<Vec<Group>>>()?;
    let highest_slot = taken
        .iter()
        .flat_map(|group| group.fds.iter().map(AsRawFd::as_raw_fd))
        .max()
        .unwrap_or(0);
    let pool = Pool {
        cutoff: highest_open.max(highest_slot) + 1,
        placeholder,
        groups: taken,
    };
    *lock() = Some(pool);
    Ok(())
}

fn lock() -> std::sync::MutexGuard<'static, Option<Pool>> {
    POOL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A group of slots, the child's until dropped.
pub(super) struct Lease {
    group: usize,
    fds: [RawFd; SLOTS],
    /// The first descriptor number the child does not keep.
    pub cutoff: i32,
}

impl Lease {
    /// A free group, none of whose slots is `avoid` (the number the notification
    /// descriptor goes to in the child, which must not replace a slot still to be read).
    pub fn take(avoid: Option<i32>) -> Option<Lease> {
        let mut guard = lock();
        let pool = guard.as_mut()?;
        let cutoff = pool.cutoff;
        let (group, found) = pool.groups.iter_mut().enumerate().find(|(_, group)| {
            !group.busy && !group.fds.iter().any(|fd| Some(fd.as_raw_fd()) == avoid)
        })?;
        found.busy = true;
        let mut fds = [0; SLOTS];
        for (slot, fd) in fds.iter_mut().zip(&found.fds) {
            *slot = fd.as_raw_fd();
        }
        Some(Lease { group, fds, cutoff })
    }

    /// Copies what the child needs into the slots and points at the copies instead:
    /// `stdio` (each that is set), the notification descriptor's source, and the report
    /// pipe's write end, whose copy is returned.
    pub fn fill_all(
        &self,
        stdio: &mut [Option<RawFd>; 3],
        notify: Option<&mut RawFd>,
        report: RawFd,
    ) -> io::Result<RawFd> {
        for (index, fd) in stdio.iter_mut().enumerate() {
            if let Some(fd) = fd {
                *fd = self.fill(index, *fd)?;
            }
        }
        if let Some(fd) = notify {
            *fd = self.fill(3, *fd)?;
        }
        self.fill(4, report)
    }

    /// Copies `source` into slot `index` (close-on-exec, as the slot was); returns the
    /// slot's number.
    fn fill(&self, index: usize, source: RawFd) -> io::Result<RawFd> {
        let slot = self.fds[index];
        // SAFETY: dup3 onto a slot this lease holds: it replaces only the slot's file.
        if unsafe { libc::dup3(source, slot, libc::O_CLOEXEC) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(slot)
    }
}

impl Drop for Lease {
    /// Puts `/dev/null` back in every slot (closing pidvisor's copies of what the child
    /// took) and frees the group. Only once the child has a table of its own.
    fn drop(&mut self) {
        let mut guard = lock();
        let Some(pool) = guard.as_mut() else {
            return;
        };
        for slot in self.fds {
            // SAFETY: dup3 onto a slot of this lease's group.
            unsafe { libc::dup3(pool.placeholder, slot, libc::O_CLOEXEC) };
        }
        if let Some(group) = pool.groups.get_mut(self.group) {
            group.busy = false;
        }
    }
}
