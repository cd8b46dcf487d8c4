//! System calls made without the C library: for a child between its `clone` and `exec`,
//! and for the last steps before pidvisor first goes idle.
//!
//! A child started with `CLONE_VM` (see `spawn`) runs in pidvisor's memory until its
//! `exec`, while pidvisor runs on. Every failing C library call writes `errno`, which is
//! per thread: the child would write pidvisor's, and pidvisor could read the child's
//! error as its own. So the child makes its system calls here, where an error comes back
//! as `-errno` and nothing else is written. And once start-up's pages are given back
//! (see `resident`), the code that still runs before pidvisor sleeps is what stays
//! resident: a system call made here touches no C library code. On x86_64 they are made
//! with the `syscall` instruction directly; elsewhere (where `CLONE_VM` is not used and
//! the child is a forked copy) through the C library's `syscall`.

/// `struct clone_args` from linux/sched.h, up to `cgroup` (CLONE_ARGS_SIZE_VER2).
#[repr(C)]
#[derive(Default)]
pub struct CloneArgs {
    pub flags: u64,
    pub pidfd: u64,
    pub child_tid: u64,
    pub parent_tid: u64,
    pub exit_signal: u64,
    pub stack: u64,
    pub stack_size: u64,
    pub tls: u64,
    pub set_tid: u64,
    pub set_tid_size: u64,
    pub cgroup: u64,
}

/// A system call's result: `Err(errno)` for the kernel's -4095..-1.
pub fn result(ret: isize) -> Result<isize, i32> {
    if (-4095..0).contains(&ret) {
        Err(-ret as i32)
    } else {
        Ok(ret)
    }
}

/// System call `n` with up to five arguments; the kernel's return value.
///
/// # Safety
/// The arguments must be what system call `n` expects (valid pointers where it reads or
/// writes memory).
#[cfg(target_arch = "x86_64")]
pub unsafe fn syscall(n: libc::c_long, args: [usize; 5]) -> isize {
    let ret: isize;
    // SAFETY: the caller's contract; the kernel clobbers rcx and r11 and nothing else.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") n as isize => ret,
            in("rdi") args[0],
            in("rsi") args[1],
            in("rdx") args[2],
            in("r10") args[3],
            in("r8") args[4],
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// System call `n` with up to five arguments; the kernel's return value.
///
/// # Safety
/// As above. Only used in a forked child here, whose `errno` is its own.
#[cfg(not(target_arch = "x86_64"))]
pub unsafe fn syscall(n: libc::c_long, args: [usize; 5]) -> isize {
    // SAFETY: the caller's contract.
    let ret = unsafe { libc::syscall(n, args[0], args[1], args[2], args[3], args[4]) };
    if ret < 0 {
        -(std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EINVAL) as isize)
    } else {
        ret as isize
    }
}

/// Starts a child that shares this process's memory (`CLONE_VM`, not `CLONE_VFORK`:
/// pidvisor does not wait) on `stack_top`, where it calls `entry(arg)`, which must never
/// return. `clone3_args`: through `clone3` with these arguments (which name the stack);
/// `None`: through the older `clone`, with `flags` and `child_tid` (the word that
/// `CLONE_CHILD_CLEARTID` clears). The child's pid, or `-errno`.
///
/// # Safety
/// `stack_top` is the 16-byte-aligned top of memory that nothing else uses until the
/// child has exec'd or exited; `entry` makes only the calls of this module and touches
/// only memory that stays valid and unchanged until then.
#[cfg(target_arch = "x86_64")]
pub(crate) unsafe fn clone_vm(
    clone3_args: Option<&CloneArgs>,
    flags: u64,
    child_tid: usize,
    stack_top: *mut u8,
    entry: unsafe extern "C" fn(*const u8) -> !,
    arg: *const u8,
) -> isize {
    let (n, a0, a1) = match clone3_args {
        Some(args) => (
            libc::SYS_clone3,
            args as *const CloneArgs as usize,
            std::mem::size_of::<CloneArgs>(),
        ),
        None => (libc::SYS_clone, flags as usize, stack_top as usize),
    };
    let ret: isize;
    // SAFETY: the caller's contract. The parent comes back from the system call with
    // every register but rax, rcx and r11 as it was. The child comes back on its own
    // stack (the kernel set rsp) with rax 0, and calls `entry(arg)`, which never returns;
    // it never comes back into this function's frame, which is the parent's.
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "mov rdi, r12",
            "call r13",
            "ud2",
            "2:",
            inlateout("rax") n as isize => ret,
            in("rdi") a0,
            in("rsi") a1,
            in("rdx") 0usize,
            in("r10") child_tid,
            in("r8") 0usize,
            in("r12") arg,
            in("r13") entry,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}
