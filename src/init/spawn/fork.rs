//! Starting the child: sharing pidvisor's memory where it can, straight into the child's
//! cgroup where the kernel can do that.
//!
//! A `fork` copies pidvisor's page tables, and every page either side then writes is
//! copied on the first write; with a hundred services, starting them from a process as
//! heavy as pidvisor took half as long again as without that (`bench/floor.py --modes`:
//! 48.6 ms by `fork`, 33.2 ms by `clone(CLONE_VM)`).
//! So on x86_64 the child is started with `CLONE_VM`, without `CLONE_VFORK`: it runs in
//! pidvisor's memory, on a stack of its own ([`Stack`]), until its `exec` gives it
//! memory of its own, and pidvisor goes on meanwhile, as after a `fork`. What the child
//! reads ([`Prepared`]) stays unchanged until the report pipe says it has exec'd or
//! exited; it writes only its own stack (see `raw` for `errno`). Signals are blocked
//! around the `clone`, so that no handler runs in the child before it has reset them.
//!
//! Writing `cgroup.procs` moves a running process, and every such move takes the cgroup
//! hierarchy's process-wide lock for writing, which also holds up every `fork` meanwhile.
//! `clone3` with `CLONE_INTO_CGROUP` (Linux 5.7) creates the child in its cgroup instead,
//! with no move. Where that is refused (an older kernel, a cgroup v1 folder, a seccomp
//! filter that hides `clone3`, as Docker's does), the child is started with the older
//! `clone` and joins by writing `cgroup.procs`; where `CLONE_VM` cannot be had (another
//! architecture, a `clone` that fails), a plain `fork` (or `clone3` into the cgroup) is
//! made, and the forked child runs the same code on its copy.
//!
//! Where the caller leased low slots (`low_slots`), the child also shares pidvisor's
//! descriptor table (`CLONE_FILES`) until its first act makes it a small one of its own,
//! and `CLONE_CHILD_CLEARTID` makes the kernel clear `Prepared::sharing` should the child
//! exec or die before it clears it itself, so that pidvisor's wait for it always ends.
//!
//! Not for a cgroup that `cgroup.kill` has emptied: Linux 6.14 and later (seen on 6.18)
//! compare the kill count of the parent's cgroup, read before the fork, with that of the
//! child's at its end, and SIGKILL the child when they differ, so every child created
//! into a cgroup killed before dies at birth. The caller says when a cgroup was killed.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::Mutex;

use super::child::{self, Prepared};
use crate::init::cgroup::ServiceGroup;
use crate::init::raw::CloneArgs;

/// `CLONE_INTO_CGROUP` from linux/sched.h.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// The stack of a child that shares pidvisor's memory, with a guard page below it; kept
/// for the next start or unmapped when dropped, which must wait until the child has
/// exec'd or exited.
pub(super) struct Stack {
    base: *mut libc::c_void,
    len: usize,
}

/// What the child's code and the system calls it makes need, with room to spare (a debug
/// build's frames are large); only the pages touched become memory.
const STACK_SIZE: usize = 128 * 1024;
const GUARD: usize = 4096;

/// The stacks of children done with them, kept for the next starts while starts follow one
/// another (a boot's slices of them): a new stack is an `mmap` and an `mprotect` that
/// splits the mapping, and each was 8 µs with a hundred services starting, in a profile of
/// `bench/floor.py`'s run, besides the `munmap`. Given back by [`release_spare_stacks`]
/// when the loop goes to sleep; as many as a slice of starts.
static SPARE_STACKS: Mutex<Vec<usize>> = Mutex::new(Vec::new());
const MAX_SPARE_STACKS: usize = 32;

fn spare_stacks() -> std::sync::MutexGuard<'static, Vec<usize>> {
    SPARE_STACKS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Unmaps the stacks kept for the next starts (none kept: nothing to do, no system call).
pub fn release_spare_stacks() {
    let bases = std::mem::take(&mut *spare_stacks());
    for base in bases {
        // SAFETY: a mapping made by `Stack::new`, of that size, which no child uses: it was
        // put back by `Stack`'s drop.
        unsafe { libc::munmap(base as *mut libc::c_void, STACK_SIZE + GUARD) };
    }
}

impl Stack {
    fn new() -> io::Result<Stack> {
        let len = STACK_SIZE + GUARD;
        if let Some(base) = spare_stacks().pop() {
            return Ok(Stack {
                base: base as *mut libc::c_void,
                len,
            });
        }
        // SAFETY: a fresh private anonymous mapping; nothing else refers to it.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let stack = Stack { base, len };
        // SAFETY: the lowest page of the mapping just made: a fault instead of an overflow.
        if unsafe { libc::mprotect(base, GUARD, libc::PROT_NONE) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(stack)
    }

    fn top(&self) -> *mut u8 {
        // SAFETY: one past the end of the mapping, which is page-aligned.
        unsafe { self.base.cast::<u8>().add(self.len) }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let mut spare = spare_stacks();
        if spare.len() < MAX_SPARE_STACKS {
            spare.push(self.base as usize);
            return;
        }
        drop(spare);
        // SAFETY: the mapping made in `new`, no longer used by any child (the caller's
        // contract on dropping).
        unsafe { libc::munmap(self.base, self.len) };
    }
}

/// A started child: its pid, and the stack it runs on if it shares pidvisor's memory.
pub(super) struct Started {
    pub pid: i32,
    pub stack: Option<Stack>,
    /// It shares pidvisor's descriptor table until it clears `Prepared::sharing`.
    pub shares_table: bool,
}

/// Starts the child that runs `prepared`, in `group` if given: created in it unless
/// `killed` (see above), else joining it. `Err`: the errno of a failed `fork`.
pub(super) fn start(
    prepared: &mut Prepared,
    group: Option<&ServiceGroup>,
    killed: bool,
) -> Result<Started, i32> {
    let procs = group.map(ServiceGroup::procs_file);
    // The group's folder, opened for this start where the group does not keep it open.
    let opened;
    let folder = match group.filter(|_| !killed) {
        Some(group) => match group.folder() {
            Some(kept) => Some(kept),
            None => {
                opened = group.open_folder().ok();
                opened.as_ref().map(AsFd::as_fd)
            }
        },
        None => None,
    };
    #[cfg(target_arch = "x86_64")]
    if let Ok(stack) = Stack::new() {
        let blocked = block_signals();
        let started = clone_vm(prepared, procs, folder, stack);
        restore_signals(&blocked);
        if let Some(started) = started {
            return Ok(started);
        }
    }
    if let Some(dir) = folder {
        prepared.join_cgroup = None;
        let args = into_cgroup(0, dir, None);
        // SAFETY: a valid clone_args of the size passed; without CLONE_VM the child gets
        // a copy of this process, as with fork, and runs only `child::run`.
        let pid = unsafe {
            libc::syscall(
                libc::SYS_clone3,
                &args as *const CloneArgs,
                std::mem::size_of::<CloneArgs>(),
            )
        };
        match pid {
            0 => child::run(prepared),
            pid if pid > 0 => {
                return Ok(Started {
                    pid: pid as i32,
                    stack: None,
                    shares_table: false,
                });
            }
            _ => {} // Refused: a plain fork, and the child joins.
        }
    }
    prepared.join_cgroup = procs.map(CStr::to_owned);
    // SAFETY: the child runs only `child::run`, which makes no C library call.
    match unsafe { libc::fork() } {
        0 => child::run(prepared),
        pid if pid > 0 => Ok(Started {
            pid,
            stack: None,
            shares_table: false,
        }),
        _ => Err(io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EAGAIN)),
    }
}

/// `clone3`'s arguments for a child created in the cgroup `folder`, with `flags` and, if
/// it shares pidvisor's memory, on `stack`.
fn into_cgroup(flags: u64, folder: BorrowedFd<'_>, stack: Option<&Stack>) -> CloneArgs {
    CloneArgs {
        flags: flags | CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        stack: stack.map_or(0, |stack| stack.base as u64),
        stack_size: stack.map_or(0, |stack| stack.len as u64),
        cgroup: folder.as_raw_fd() as u64,
        ..CloneArgs::default()
    }
}

/// The child on `stack`, sharing this process's memory: with `clone3` into the cgroup
/// `folder`, else with `clone` (joining the cgroup of `procs` itself). Also sharing the
/// descriptor table, until the child makes its own, where `prepared` says where to cut it
/// (see `low_slots`). `None`: neither could be made.
#[cfg(target_arch = "x86_64")]
fn clone_vm(
    prepared: &mut Prepared,
    procs: Option<&CStr>,
    folder: Option<BorrowedFd<'_>>,
    stack: Stack,
) -> Option<Started> {
    let entry = child::entry;
    let shares_table = prepared.unshare_below.is_some();
    let (table_flags, child_tid) = match shares_table {
        true => (
            (libc::CLONE_FILES | libc::CLONE_CHILD_CLEARTID) as u64,
            prepared.sharing.as_ptr() as usize,
        ),
        false => (0, 0),
    };
    if let Some(dir) = folder {
        prepared.join_cgroup = None;
        let mut args = into_cgroup(libc::CLONE_VM as u64 | table_flags, dir, Some(&stack));
        args.child_tid = child_tid as u64;
        let arg = (prepared as *const Prepared).cast::<u8>();
        // SAFETY: the stack is the child's alone until it has exec'd or exited, which the
        // caller waits for before dropping it and `prepared`; `entry` runs only
        // `child::run`, which makes only `raw`'s system calls.
        let pid = unsafe { crate::init::raw::clone_vm(Some(&args), 0, 0, stack.top(), entry, arg) };
        if pid > 0 {
            return Some(Started {
                pid: pid as i32,
                stack: Some(stack),
                shares_table,
            });
        }
    }
    prepared.join_cgroup = procs.map(CStr::to_owned);
    let flags = libc::CLONE_VM as u64 | table_flags | libc::SIGCHLD as u64;
    let arg = (prepared as *const Prepared).cast::<u8>();
    // SAFETY: as above.
    let pid =
        unsafe { crate::init::raw::clone_vm(None, flags, child_tid, stack.top(), entry, arg) };
    (pid > 0).then(|| Started {
        pid: pid as i32,
        stack: Some(stack),
        shares_table,
    })
}

/// Blocks every signal; returns the mask to restore.
#[cfg(target_arch = "x86_64")]
fn block_signals() -> libc::sigset_t {
    // SAFETY: sigfillset and sigprocmask get valid sigset_t pointers.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::sigprocmask(libc::SIG_SETMASK, &all, &mut old);
        old
    }
}

#[cfg(target_arch = "x86_64")]
fn restore_signals(mask: &libc::sigset_t) {
    // SAFETY: a valid sigset_t from block_signals.
    unsafe { libc::sigprocmask(libc::SIG_SETMASK, mask, std::ptr::null_mut()) };
}
