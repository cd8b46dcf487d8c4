//! Starting a child: clone (or fork), a clean process state, exec.
//!
//! Every child runs in its own process group (so that a signal can reach a shell wrapper
//! and everything it started). The main command, when stdin is a terminal, gets that
//! terminal's foreground, so job control and Ctrl-C work as if pidvisor were not there.
//! Signal state is reset as described in [`crate::init::signals`]. pidvisor's own file
//! descriptors are all close-on-exec; descriptors inherited from whoever started pidvisor
//! are passed through untouched, since they were meant for the container's programs.
//!
//! A spawn has two halves. [`start`] builds everything the child needs (argv, environment,
//! the files `execve` is tried on, group list: nothing is allocated in the child;
//! `/dev/null` and pidvisor's ids are taken once and kept), starts the child, and returns
//! at once with a [`Starting`] child, without waiting for its `exec`; the child's side is
//! in `child`, how it is started (in pidvisor's memory, straight into its cgroup, where
//! possible) in `fork`. [`Starting`] keeps what the child reads until the child is done
//! with it. [`Starting::wait`] then reads the close-on-exec report pipe: end-of-file means
//! the `exec` happened, four bytes are the errno of the step that failed, which turns "not
//! found" and "permission denied" into exit codes 127 and 126 with a clear message (the
//! failed child is reaped there, so nobody else ever sees it). Starting many children
//! before waiting for the first lets their `exec`s run in parallel; [`spawn`] does both
//! halves for a single child. The readiness descriptor's number is taken in pidvisor
//! during the spawn, so that nothing the spawn opens can land on it (see `occupy`).
//!
//! Where slots were reserved (`low_slots`), the child shares pidvisor's descriptor table
//! instead of copying it, and takes what it needs from low numbers that pidvisor keeps
//! for it until the child has made a table of its own: starting a child then costs the
//! same whether pidvisor holds ten descriptors or two thousand.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::init::shebang;
use crate::init::signals::ChildSignalReset;

mod child;
mod environment;
mod fork;
mod low_slots;

pub use environment::Inherited;
pub use fork::release_spare_stacks;
pub use low_slots::reserve as reserve_low_slots;

use low_slots::Lease;

/// A resolved user: ids, not names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The name as written in service.toml, for messages.
    pub user: String,
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups (from /etc/group), including `gid`.
    pub groups: Vec<u32>,
    /// The user's home directory, for `HOME`.
    pub home: Option<PathBuf>,
    /// Set `PR_SET_NO_NEW_PRIVS` before `exec`: neither a setuid program (`sudo`, `su`)
    /// nor file capabilities can give the child back what it gave up.
    pub no_new_privileges: bool,
}

/// What one of a child's standard descriptors is, when not pidvisor's own.
pub enum ChildIo {
    /// `/dev/null`.
    Null,
    /// This descriptor (a copy: the child gets it, pidvisor closes it after the fork).
    Fd(OwnedFd),
}

/// Everything a child is started with, beyond its argv.
#[derive(Default)]
pub struct Setup<'a> {
    pub cwd: Option<&'a Path>,
    /// Added to the inherited environment.
    pub env: Vec<(&'a str, &'a str)>,
    /// The inherited environment, read once (see [`Inherited`]); `None`: read it now, if
    /// variables are added.
    pub inherited: Option<&'a Inherited>,
    pub credentials: Option<&'a Credentials>,
    pub umask: Option<u32>,
    /// `None`: pidvisor's own.
    pub stdin: Option<ChildIo>,
    pub stdout: Option<ChildIo>,
    pub stderr: Option<ChildIo>,
    /// Make this pipe end the child's descriptor number `.0` (s6 notification-fd).
    pub extra_fd: Option<(i32, &'a OwnedFd)>,
    /// Become the terminal's foreground process group (the main command only).
    pub take_terminal: bool,
    /// Start in this cgroup (see [`crate::init::cgroup`]).
    pub cgroup: Option<&'a crate::init::cgroup::ServiceGroup>,
    /// That cgroup was emptied with `cgroup.kill`: the child must join it after the fork,
    /// not be created in it (see `fork`).
    pub cgroup_killed: bool,
}

/// Why a command could not be started, with the shell-style exit code to report.
#[derive(Debug)]
pub struct SpawnError {
    pub exit_code: i32,
    pub message: String,
}

/// A started child whose `exec` has not been confirmed yet.
#[must_use = "a started child must be waited for: its exec may have failed"]
pub struct Starting {
    pid: i32,
    /// The read end of the report pipe.
    report: OwnedFd,
    program: OsString,
    /// What the child reads until its `exec`, and the stack it runs on if it shares
    /// pidvisor's memory: kept until the report says it is done with them.
    running_on: Option<(Box<child::Prepared>, Option<fork::Stack>)>,
    /// The slots the child takes its descriptors from, while it shares pidvisor's table.
    lease: Option<Lease>,
}

/// Starts `argv` as a child and returns its pid, which is also its process group id,
/// once it has exec'd.
pub fn spawn(
    argv: &[OsString],
    setup: Setup<'_>,
    signals: ChildSignalReset,
) -> Result<i32, SpawnError> {
    start(argv, setup, signals)?.wait()
}

/// Starts a child that sets itself up and execs `argv`; returns without waiting for the
/// `exec` (see [`Starting::wait`]).
pub fn start(
    argv: &[OsString],
    setup: Setup<'_>,
    signals: ChildSignalReset,
) -> Result<Starting, SpawnError> {
    let Some(program) = argv.first() else {
        return Err(SpawnError {
            exit_code: 127,
            message: "empty command".to_owned(),
        });
    };
    let failed = |err: io::Error| SpawnError {
        exit_code: exit_code_for_errno(err.raw_os_error().unwrap_or(libc::EINVAL)),
        message: cannot_run(program, &err),
    };
    let invalid = || failed(io::Error::from(io::ErrorKind::InvalidInput));
    let args = argv
        .iter()
        .map(|arg| c_string(arg))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(invalid)?;
    let added = added_variables(&setup);
    let fresh;
    let environment = match (added.is_empty(), setup.inherited) {
        (true, _) => None,
        (false, Some(inherited)) => Some(inherited),
        (false, None) => {
            fresh = Inherited::capture();
            Some(&fresh)
        }
    }
    .map(|inherited| environment::with_added(inherited, &added).ok_or_else(invalid))
    .transpose()?;
    let search_path = added
        .iter()
        .rev()
        .find(|(key, _)| *key == "PATH")
        .map(|(_, value)| value.to_os_string())
        .or_else(|| std::env::var_os("PATH"));
    let candidates = candidates(program, search_path.as_deref()).ok_or_else(invalid)?;
    let cwd = match setup.cwd {
        Some(cwd) => Some(c_string(cwd.as_os_str()).ok_or_else(invalid)?),
        None => None,
    };
    let take_terminal = setup.take_terminal && stdin_is_terminal();
    // A pidvisor that is not root cannot switch users, not even call setgroups: a service
    // meant to run as pidvisor's own user and group simply keeps them.
    let own = own_ids();
    let switch = setup
        .credentials
        .filter(|c| own.0 == 0 || (c.uid, c.gid) != own);
    let groups: Vec<libc::gid_t> = switch
        .map(|c| c.groups.iter().map(|&g| g as libc::gid_t).collect())
        .unwrap_or_default();
    let open_files = crate::init::limits::for_child().map_err(failed)?;
    let lease = Lease::take(setup.extra_fd.map(|(target, _)| target));
    // Held until the child is started: see `occupy`. Before any other descriptor is made.
    // Not needed when the child takes its descriptors from slots, none of them `target`.
    let (mut extra_fd, _placeholder) = match setup.extra_fd {
        Some((target, fd)) if lease.is_some() => (Some((target, fd.as_raw_fd())), None),
        Some((target, fd)) => {
            let (source, placeholder) = occupy(target, fd).map_err(|err| SpawnError {
                exit_code: 126,
                message: format!("cannot set up descriptor {target}: {err}"),
            })?;
            (Some((target, source)), placeholder)
        }
        None => (None, None),
    };
    let stdio = [setup.stdin, setup.stdout, setup.stderr];
    let null = match stdio.iter().any(|io| matches!(io, Some(ChildIo::Null))) {
        true => Some(dev_null().map_err(failed)?),
        false => None,
    };
    let mut stdio_fds = stdio.each_ref().map(|io| match io {
        None => None,
        Some(ChildIo::Null) => null,
        Some(ChildIo::Fd(fd)) => Some(fd.as_raw_fd()),
    });
    let crate::init::pipe::Pipe {
        read: report,
        write: report_writer,
    } = crate::init::pipe::Pipe::new().map_err(failed)?;
    let mut report_fd = report_writer.as_raw_fd();
    if let Some(lease) = &lease {
        report_fd = lease
            .fill_all(
                &mut stdio_fds,
                extra_fd.as_mut().map(|(_, fd)| fd),
                report_fd,
            )
            .map_err(failed)?;
    }
    let argv_pointers = null_terminated(&args);
    let (envp, added_strings, inherited) = match environment {
        Some(env) => (env.pointers, env.added, Some(env.inherited)),
        None => (environment::current(), Vec::new(), None),
    };
    let mut prepared = Box::new(child::Prepared {
        candidates,
        argv: argv_pointers,
        _args: args,
        envp,
        _added: added_strings,
        _inherited: inherited,
        cwd,
        stdio: stdio_fds,
        extra_fd,
        take_terminal,
        join_cgroup: None,
        umask: setup.umask,
        ids: switch.map(|c| (c.uid, c.gid)),
        groups,
        no_new_privileges: setup.credentials.is_some_and(|c| c.no_new_privileges),
        dispositions: signals.dispositions(),
        open_files,
        report: report_fd,
        unshare_below: lease.as_ref().map(|lease| lease.cutoff),
        sharing: AtomicU32::new(1),
    });
    let started = fork::start(&mut prepared, setup.cgroup, setup.cgroup_killed)
        .map_err(|errno| failed(io::Error::from_raw_os_error(errno)))?;
    let pid = started.pid;
    // A child with a table of its own (a fork) has its copies of the slots already.
    let lease = lease.filter(|_| started.shares_table);
    // The child does the same; whichever comes first, the group exists once this returns,
    // so that signalling it now reaches the child. Fails (EACCES) if it already exec'd.
    // SAFETY: setpgid has no memory-safety preconditions.
    unsafe { libc::setpgid(pid, pid) };
    Ok(Starting {
        pid,
        report,
        program: program.clone(),
        running_on: Some((prepared, started.stack)),
        lease,
    })
}

/// The files `execve` is tried on, as `execvp` does: `program` itself when it has a
/// `/`; else `program` in each folder of `search_path` (the C library's default when
/// unset), an empty folder meaning the current one. `None`: a NUL.
fn candidates(program: &OsStr, search_path: Option<&OsStr>) -> Option<Vec<CString>> {
    if program.as_bytes().contains(&b'/') {
        return Some(vec![c_string(program)?]);
    }
    let search_path = search_path.unwrap_or(OsStr::new("/usr/local/bin:/bin:/usr/bin"));
    search_path
        .as_bytes()
        .split(|&b| b == b':')
        .map(|folder| {
            let mut file = folder.to_vec();
            if !file.is_empty() {
                file.push(b'/');
            }
            file.extend_from_slice(program.as_bytes());
            CString::new(file).ok()
        })
        .collect()
}

impl Starting {
    /// Waits until the child has exec'd (its pid) or failed to (reaped here, with the
    /// message and exit code to report).
    pub fn wait(mut self) -> Result<i32, SpawnError> {
        let outcome = self.report();
        self.running_on = None;
        match outcome {
            None => Ok(self.pid),
            Some(errno) => {
                let err = io::Error::from_raw_os_error(errno);
                Err(SpawnError {
                    exit_code: exit_code_for_errno(errno),
                    message: cannot_run(&self.program, &err),
                })
            }
        }
    }

    /// Waits until the child has a descriptor table of its own (at once, almost always:
    /// its first act), then frees its slots, which closes pidvisor's copy of the report
    /// pipe's write end among them.
    fn release_slots(&mut self) {
        let Some(lease) = self.lease.take() else {
            return;
        };
        if let Some((prepared, _)) = &self.running_on {
            let word = &prepared.sharing;
            while word.load(Ordering::Acquire) != 0 {
                // SAFETY: a futex wait on a word that lives as long as `prepared`; it
                // returns at once if the word is no longer 1. Not FUTEX_PRIVATE_FLAG:
                // the kernel's wake at the child's exec or exit is a shared one, which
                // would not reach a private waiter.
                unsafe {
                    libc::syscall(
                        libc::SYS_futex,
                        word.as_ptr(),
                        libc::FUTEX_WAIT,
                        1u32,
                        std::ptr::null::<libc::timespec>(),
                    )
                };
            }
        }
        drop(lease);
    }

    /// Reads the report to its end: `None` once the child has exec'd, the errno of the
    /// step that failed otherwise (the child is then reaped: it exits right after its
    /// report, and is gone when this returns).
    fn report(&mut self) -> Option<i32> {
        self.release_slots();
        let mut bytes = [0u8; 4];
        let mut filled = 0;
        while filled < bytes.len() {
            // SAFETY: reads into the unfilled rest of `bytes`.
            let n = unsafe {
                libc::read(
                    self.report.as_raw_fd(),
                    bytes[filled..].as_mut_ptr().cast(),
                    bytes.len() - filled,
                )
            };
            match n {
                0 => break,
                n if n > 0 => filled += n as usize,
                _ if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {}
                _ => break,
            }
        }
        if filled == 0 {
            return None;
        }
        reap(self.pid);
        Some(match filled {
            4 => i32::from_ne_bytes(bytes),
            _ => libc::EIO,
        })
    }
}

impl Drop for Starting {
    /// A child dropped unconfirmed may still be reading what it was prepared with: that
    /// (and its stack) is freed only once its report is complete.
    fn drop(&mut self) {
        if self.running_on.is_some() {
            let _ = self.report();
        }
    }
}

/// The message for a program that could not be started, naming a missing `#!`
/// interpreter rather than the script when that is what is missing.
fn cannot_run(program: &OsStr, err: &io::Error) -> String {
    match err.raw_os_error() == Some(libc::ENOENT) {
        true => shebang::missing_interpreter(Path::new(program)),
        false => None,
    }
    .map_or_else(
        || format!("cannot run '{}': {err}", program.to_string_lossy()),
        |missing| {
            format!(
                "cannot run '{}': its interpreter {} (the #! line) does not exist",
                program.to_string_lossy(),
                missing.display()
            )
        },
    )
}

/// What the child's environment adds to pidvisor's: `setup`'s variables, then the user's.
fn added_variables<'a>(setup: &Setup<'a>) -> Vec<(&'a OsStr, &'a OsStr)> {
    let mut added: Vec<(&OsStr, &OsStr)> = setup
        .env
        .iter()
        .map(|&(key, value)| (OsStr::new(key), OsStr::new(value)))
        .collect();
    if let Some(credentials) = setup.credentials {
        let user = OsStr::new(credentials.user.as_str());
        added.extend([(OsStr::new("USER"), user), (OsStr::new("LOGNAME"), user)]);
        if let Some(home) = &credentials.home {
            added.push((OsStr::new("HOME"), home.as_os_str()));
        }
    }
    added
}

fn c_string(text: &OsStr) -> Option<CString> {
    CString::new(text.as_bytes()).ok()
}

fn null_terminated(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain([std::ptr::null()])
        .collect()
}

/// The effective user and group pidvisor runs as, read once: pidvisor never changes them.
pub fn own_ids() -> (u32, u32) {
    static IDS: OnceLock<(u32, u32)> = OnceLock::new();
    *IDS.get_or_init(|| {
        (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        )
    })
}

/// `/dev/null`, opened by the first spawn that needs it and kept (close-on-exec).
fn dev_null() -> io::Result<RawFd> {
    static NULL: OnceLock<OwnedFd> = OnceLock::new();
    if let Some(fd) = NULL.get() {
        return Ok(fd.as_raw_fd());
    }
    // SAFETY: a valid C string; the descriptor gets one owner below.
    let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: open just returned it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    Ok(NULL.get_or_init(|| fd).as_raw_fd())
}

/// Reaps a child that failed to exec: it exits right after its report.
fn reap(pid: i32) {
    loop {
        // SAFETY: waitpid for our own child, status not needed.
        let rc = unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
        if rc >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return;
        }
    }
}

/// Makes sure that descriptor number `target` is taken in pidvisor while it spawns, and
/// returns the descriptor the child should copy to `target` (plus a copy to hold until
/// the child has started, if one was made).
///
/// [`start`] opens descriptors of its own after this (among them the close-on-exec
/// report pipe through which the child reports a failed `exec`), each at the lowest free
/// number. Had one of them landed on `target`, the child's `dup2` onto
/// `target` would replace it: a replaced error pipe reports success to pidvisor at once,
/// and a failed `exec` then writes its error into the notification pipe and exits 1,
/// instead of being reported as "cannot run" with 126 or 127. So when `target` is free,
/// `source` is copied there now (close-on-exec: in the child, only clearing that flag is
/// left to do); when pidvisor uses `target` itself, the child's `dup2` replaces only the
/// child's copy of pidvisor's descriptor, which `exec` would have closed anyway.
fn occupy(target: i32, source: &OwnedFd) -> io::Result<(i32, Option<OwnedFd>)> {
    // SAFETY: F_GETFD only asks whether `target` is open.
    let taken = unsafe { libc::fcntl(target, libc::F_GETFD) } >= 0;
    if taken {
        return Ok((source.as_raw_fd(), None));
    }
    // SAFETY: `target` is free, so dup3 replaces nothing; the copy gets one owner.
    let copy = unsafe { libc::dup3(source.as_raw_fd(), target, libc::O_CLOEXEC) };
    check(copy)?;
    // SAFETY: dup3 just made `copy` (equal to `target`); nothing else owns it.
    Ok((target, Some(unsafe { OwnedFd::from_raw_fd(copy) })))
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// 127 when the program does not exist (like a shell's "command not found"), 126 when it
/// exists but cannot be executed.
fn exit_code_for_errno(errno: i32) -> i32 {
    match errno {
        libc::ENOENT | libc::ENOTDIR => 127,
        _ => 126,
    }
}

fn stdin_is_terminal() -> bool {
    // SAFETY: isatty has no memory-safety preconditions.
    unsafe { libc::isatty(libc::STDIN_FILENO) == 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_free_target_is_taken_by_a_copy_and_a_taken_one_is_left_alone() {
        let crate::init::pipe::Pipe { read, write } = crate::init::pipe::Pipe::new().expect("pipe");
        // A number this test binary does not use.
        let (source, placeholder) = occupy(900, &write).expect("occupy");
        assert_eq!(source, 900);
        let placeholder = placeholder.expect("a copy at 900");
        assert_eq!(placeholder.as_raw_fd(), 900);
        // SAFETY: F_GETFD on an open descriptor.
        let flags = unsafe { libc::fcntl(900, libc::F_GETFD) };
        assert_eq!(flags & libc::FD_CLOEXEC, libc::FD_CLOEXEC);

        // The source's own number, or any number pidvisor uses: no copy.
        for taken in [write.as_raw_fd(), read.as_raw_fd()] {
            let (source, placeholder) = occupy(taken, &write).expect("occupy");
            assert_eq!(source, write.as_raw_fd());
            assert!(placeholder.is_none());
        }
    }

    #[test]
    fn a_program_without_a_slash_is_looked_for_in_each_folder_of_path_as_execvp_does() {
        let files = |program: &str, path: Option<&str>| -> Vec<String> {
            candidates(OsStr::new(program), path.map(OsStr::new))
                .expect("no NUL")
                .iter()
                .map(|file| file.to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(files("/srv/run", Some("/bin")), ["/srv/run"]);
        assert_eq!(files("./run", Some("/bin")), ["./run"]);
        assert_eq!(
            files("sh", Some("/usr/bin::/bin")),
            ["/usr/bin/sh", "sh", "/bin/sh"],
            "an empty folder is the current one"
        );
        assert_eq!(
            files("sh", None),
            ["/usr/local/bin/sh", "/bin/sh", "/usr/bin/sh"]
        );
        assert!(candidates(OsStr::from_bytes(b"s\0h"), None).is_none());
    }

    #[test]
    fn missing_is_127_and_unexecutable_is_126() {
        let code = exit_code_for_errno;
        assert_eq!(code(libc::ENOENT), 127);
        assert_eq!(code(libc::ENOTDIR), 127);
        assert_eq!(code(libc::EACCES), 126);
        assert_eq!(code(libc::ENOEXEC), 126);
    }
}
