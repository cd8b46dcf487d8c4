//! Letting go of the binary's pages that start-up needed and the running init does not.
//!
//! A static binary's code is mapped from the file, and the kernel maps up to 64 KiB
//! around every page that faults in (fault-around), so by the time pidvisor has parsed
//! its options, scanned its services and started them, nearly the whole file is resident
//! in pidvisor's page tables, most of it code that runs once. [`release_read_only_pages`]
//! unmaps the read-only part of the binary (code and constants) from the process with
//! `MADV_DONTNEED`, once start-up is over: the pages stay in the page cache, where the
//! kernel may reclaim the ones nobody maps, and the few that the event loop runs fault
//! back in on their next use, from the cache, without any I/O.
//!
//! What faults back in is what runs after the release: [`release_and_wait`] therefore
//! gives the pages back right before pidvisor first sleeps, and makes both that and the
//! wait itself as raw system calls (`crate::init::raw`), so that while pidvisor sleeps the
//! only code it maps is this function's page or two. The fault-around that filled the
//! page tables at start-up also refills them: each code page that faults maps its 64 KiB
//! window, and an ordinary loop pass after the release touched 8 to 10 such windows.
//!
//! Only segments that are read-only in memory are touched: their pages are never written,
//! so dropping them loses nothing (for a private file mapping, `MADV_DONTNEED` means "read
//! it from the file again"). The segments come from the program headers that the kernel
//! passes in the auxiliary vector, so no file is read; a range is shrunk to whole pages
//! inside the segment, so a page shared with a writable neighbour is never dropped.

use std::os::fd::RawFd;

use crate::init::raw;

/// Unmaps the binary's read-only segments from this process (they are read again from
/// the page cache when next used), then waits on `epoll` without a timeout for up to
/// `events.len()` events. Returns the bytes given back (0 where the program headers
/// cannot be had) and what `epoll_pwait` returned (the number of events, or `-errno`).
#[inline(never)]
pub fn release_and_wait(epoll: RawFd, events: &mut [libc::epoll_event]) -> (usize, isize) {
    let page = page_size();
    let segments = read_only_segments();
    let mut released = 0;
    for &(start, len) in &segments {
        let first = start.div_ceil(page) * page;
        let end = (start + len) / page * page;
        if end <= first {
            continue;
        }
        // SAFETY: [first, end) lies inside a read-only PT_LOAD segment of this very
        // program, mapped privately from its file and never written: MADV_DONTNEED only
        // drops the page-table entries, and the next access reads the same bytes back
        // from the file.
        let done = unsafe {
            raw::syscall(
                libc::SYS_madvise,
                [first, end - first, libc::MADV_DONTNEED as usize, 0, 0],
            )
        } == 0;
        if done {
            released += end - first;
        }
    }
    let (list, max) = (events.as_mut_ptr() as usize, events.len());
    let forever = -1isize as usize;
    // SAFETY: epoll_pwait writes at most `max` events into `events`; no signal mask.
    let ready = unsafe {
        raw::syscall(
            libc::SYS_epoll_pwait,
            [epoll as usize, list, max, forever, 0],
        )
    };
    (released, ready)
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096).max(4096)
}

/// (address, length) in memory of each loaded segment that is not writable.
fn read_only_segments() -> Vec<(usize, usize)> {
    // SAFETY: getauxval has no preconditions; 0 means "not there".
    let (phdr, count) = unsafe {
        (
            libc::getauxval(libc::AT_PHDR) as usize,
            libc::getauxval(libc::AT_PHNUM) as usize,
        )
    };
    if phdr == 0 || count == 0 {
        return Vec::new();
    }
    // SAFETY: the kernel put `count` program headers at `phdr` in this process's memory
    // (they are part of the first loaded segment) and they stay there, unchanged.
    let headers = unsafe { std::slice::from_raw_parts(phdr as *const libc::Elf64_Phdr, count) };
    // Where the program was loaded relative to its link-time addresses: 0 for the static
    // non-PIE binary that .cargo/config.toml builds; for a PIE, PT_PHDR tells.
    let bias = headers
        .iter()
        .find(|header| header.p_type == libc::PT_PHDR)
        .map_or(0, |header| phdr.wrapping_sub(header.p_vaddr as usize));
    headers
        .iter()
        .filter(|header| header.p_type == libc::PT_LOAD && header.p_flags & libc::PF_W == 0)
        .map(|header| {
            (
                bias.wrapping_add(header.p_vaddr as usize),
                header.p_memsz as usize,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The code of this very test binary is among the segments, and dropping its pages
    /// leaves it running: the next instructions fault back in from the file.
    #[test]
    fn the_running_code_is_released_and_keeps_running() {
        let here = the_running_code_is_released_and_keeps_running as *const () as usize;
        let segments = read_only_segments();
        assert!(
            segments
                .iter()
                .any(|&(start, len)| (start..start + len).contains(&here)),
            "this function's code lies in a read-only segment: {segments:x?}"
        );
        let epoll = nix::sys::epoll::Epoll::new(nix::sys::epoll::EpollCreateFlags::EPOLL_CLOEXEC)
            .expect("epoll");
        let (pipe, writer) = nix::unistd::pipe().expect("pipe");
        let event = nix::sys::epoll::EpollEvent::new(nix::sys::epoll::EpollFlags::EPOLLIN, 7);
        epoll.add(&pipe, event).expect("add");
        nix::unistd::write(&writer, b"x").expect("write");
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 4];
        let fd = std::os::fd::AsRawFd::as_raw_fd(&epoll.0);
        let (released, ready) = release_and_wait(fd, &mut events);
        assert!(released > 0);
        assert_eq!(ready, 1, "the pipe is ready: the wait returns at once");
        assert_eq!({ events[0].u64 }, 7);
        // Still here, with the same answers.
        assert_eq!(read_only_segments(), segments);
        assert_eq!("still running".len(), 13);
    }
}
