//! The harness: runs pidvisor as the real PID 1 of a fresh PID namespace (or directly, as
//! a child subreaper), captures its output, and cleans up after a failed test.
//!
//! It proves nothing by itself; it makes the other modules' proofs reliable:
//!
//! - pidvisor starts from a known state: default signal dispositions, an empty signal
//!   mask, only descriptors 0, 1 and 2 (plus any the test passes on purpose), and no
//!   `PIDVISOR_*` variable from the environment that runs the tests;
//! - nothing sleeps to let something happen: every wait is [`poll_until`] (or a wrapper),
//!   which polls a condition against a deadline and panics with a description;
//! - a failing test prints the command line, the exit status, stdout, stderr and the temp
//!   dir, and kills whatever it started (SIGKILL to the namespace's PID 1 ends the whole
//!   namespace; `unshare --kill-child` covers the moment before its pid is known);
//! - a pidvisor a test leaves running is killed the same way, and the services' cgroup
//!   folder it can no longer remove is removed for it once its namespace is gone, so
//!   that no `pidvisor-*` folder is left on the host.
//!
//! Shared by the `pid1` and `services` test targets (each includes it with `#[path]`), so
//! each target uses only part of it.

#![allow(dead_code)]

use std::cell::OnceCell;
use std::ffi::{CStr, CString};
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The binary under test.
pub const PIDVISOR: &str = env!("CARGO_BIN_EXE_pidvisor");

/// How long to wait for something that normally takes milliseconds. Generous on purpose:
/// it only matters when the test is about to fail anyway.
pub const PATIENCE: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------
// Waiting

/// Polls `check` until it returns `Ok`, and panics once `timeout` has passed. The panic
/// says what was awaited and the last `Err` (what was seen instead).
pub fn poll_until(
    timeout: Duration,
    what: impl fmt::Display,
    mut check: impl FnMut() -> Result<(), String>,
) {
    let start = Instant::now();
    let mut pause = Duration::from_micros(200);
    loop {
        let seen = match check() {
            Ok(()) => return,
            Err(seen) => seen,
        };
        if start.elapsed() >= timeout {
            if seen.is_empty() {
                panic!("timed out after {timeout:?} waiting until {what}");
            }
            panic!("timed out after {timeout:?} waiting until {what}; last seen: {seen}");
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(5));
    }
}

/// Polls `condition` every few milliseconds until it holds; panics with `what` once
/// `timeout` has passed.
pub fn wait_until(timeout: Duration, what: impl fmt::Display, mut condition: impl FnMut() -> bool) {
    poll_until(timeout, what, || {
        if condition() {
            Ok(())
        } else {
            Err(String::new())
        }
    });
}

// ---------------------------------------------------------------------------------------
// Serialising the heavy tests

static LOAD: RwLock<()> = RwLock::new(());

/// Held by tests that fork thousands of processes: they run alone, so that they cannot
/// exhaust the pid space together or slow down a test that measures time.
pub fn heavy() -> RwLockWriteGuard<'static, ()> {
    LOAD.write().unwrap_or_else(PoisonError::into_inner)
}

/// Held by tests that assert an upper bound on elapsed time: they may run together, but
/// never alongside a heavy test.
pub fn timed() -> RwLockReadGuard<'static, ()> {
    LOAD.read().unwrap_or_else(PoisonError::into_inner)
}

// ---------------------------------------------------------------------------------------
// Files

/// A directory of its own for each test, removed when the test passes and kept (and
/// named in the output) when it fails.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "pidvisor-test-{}-{}-{name}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir(&path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of `name` inside the directory, as a string for command lines.
    pub fn file(&self, name: &str) -> String {
        let path = self.path.join(name);
        path.to_str()
            .unwrap_or_else(|| panic!("temp path {} is not UTF-8", path.display()))
            .to_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("temp dir kept for inspection: {}", self.path.display());
        } else {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// The path of a fixture script in `tests/fixtures/`.
pub fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// The real python3 interpreter (resolved once, so that a version-manager shim does not
/// add its own processes and startup time to every test).
pub fn python() -> &'static str {
    static PYTHON: OnceLock<String> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let output = Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .unwrap_or_else(|e| panic!("python3 is needed by the tests: {e}"));
        assert!(output.status.success(), "python3 -c failed: {output:?}");
        String::from_utf8(output.stdout)
            .expect("python path is UTF-8")
            .trim()
            .to_owned()
    })
}

/// Quotes `word` for `sh`.
pub fn sh_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

// ---------------------------------------------------------------------------------------
// /proc

/// The fields of `/proc/<pid>/stat` the tests use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcStat {
    pub pid: i32,
    pub comm: String,
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    /// Start time in clock ticks since boot: tells a process from a later one that reuses
    /// its pid.
    pub starttime: u64,
}

/// `/proc/<pid>/stat`, or `None` once the process is gone (fully reaped).
pub fn proc_stat(pid: i32) -> Option<ProcStat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let fields: Vec<&str> = text[close + 1..].split_whitespace().collect();
    Some(ProcStat {
        pid,
        comm: text[open + 1..close].to_owned(),
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        pgrp: fields.get(2)?.parse().ok()?,
        starttime: fields.get(19)?.parse().ok()?,
    })
}

/// Every process on the host (as seen from the test's PID namespace).
pub fn processes() -> Vec<ProcStat> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(proc_stat)
        .collect()
}

/// Every process whose parent is `ppid`, zombies included.
pub fn children_of(ppid: i32) -> Vec<ProcStat> {
    processes().into_iter().filter(|p| p.ppid == ppid).collect()
}

/// Every descendant of `root`.
pub fn descendants_of(root: i32) -> Vec<ProcStat> {
    let all = processes();
    let mut found: Vec<ProcStat> = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for p in all.iter().filter(|p| p.ppid == parent) {
            frontier.push(p.pid);
            found.push(p.clone());
        }
    }
    found
}

/// One line of `/proc/<pid>/status`, such as `SigBlk`, without its label.
pub fn status_field(pid: i32, field: &str) -> Option<String> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        (name == field).then(|| value.trim().to_owned())
    })
}

/// A Python program that lists its own open descriptors as "fd target" lines (the one
/// `os.listdir` used is closed by the time `readlink` runs, so it drops out).
pub const LIST_FDS: &str = "
import os
for name in sorted(os.listdir('/proc/self/fd'), key=int):
    try:
        print(name, os.readlink('/proc/self/fd/' + name))
    except OSError:
        pass
";

/// The "fd target" lines of [`LIST_FDS`], by descriptor.
pub fn listed_fds<'a>(
    lines: impl Iterator<Item = &'a str>,
) -> std::collections::BTreeMap<i32, String> {
    lines
        .map(|line| {
            let (fd, target) = line.split_once(' ').expect("'fd target' lines");
            (fd.parse().expect("fd number"), target.to_owned())
        })
        .collect()
}

/// Where each open descriptor of `pid` points.
pub fn fd_targets(pid: i32) -> Vec<String> {
    let Ok(entries) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| fs::read_link(entry.ok()?.path()).ok())
        .map(|target| target.to_string_lossy().into_owned())
        .collect()
}

fn kill(pid: i32, signo: libc::c_int) -> io::Result<()> {
    // SAFETY: kill has no memory-safety preconditions.
    if unsafe { libc::kill(pid, signo) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

// ---------------------------------------------------------------------------------------
// Starting pidvisor

/// How pidvisor is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Topology {
    /// As PID 1 of a new PID namespace, under `unshare --fork`.
    Namespace,
    /// As a plain child of the test (so not PID 1: a child subreaper).
    Direct,
    /// As PID 1 of a new PID namespace, inside `script`, with a pseudo-terminal on its
    /// stdin, stdout and stderr (`script`'s output is what the test collects).
    Terminal,
}

/// The `unshare` words that make pidvisor PID 1 of a new PID namespace.
fn unshare_words() -> Vec<String> {
    as_pid_one(PIDVISOR)
}

/// The `unshare` words that make `program` PID 1 of a new PID namespace with its own
/// /proc. `--kill-child`: if `unshare` is killed (by a failing test's cleanup), the
/// namespace's PID 1 gets SIGKILL, which ends the whole namespace. When PID 1 ends, the
/// kernel kills everything else in it: nothing a test starts there can outlive it.
pub fn as_pid_one(program: &str) -> Vec<String> {
    let mut words = vec!["unshare".to_owned()];
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        words.extend(["--user".to_owned(), "--map-root-user".to_owned()]);
    }
    words.extend(
        ["--pid", "--fork", "--mount-proc", "--kill-child", program]
            .iter()
            .map(|w| (*w).to_owned()),
    );
    words
}

/// What to run: pidvisor's arguments, how, and with what.
pub struct Launch {
    topology: Topology,
    args: Vec<String>,
    env: Vec<(String, String)>,
    passed_fd: Option<(File, RawFd)>,
    /// pidvisor's stdout and stderr, when the test does not collect them itself.
    stdout: Option<File>,
    stderr: Option<File>,
    /// A soft limit on open files for pidvisor (the hard limit stays as it is).
    open_files: Option<libc::rlim_t>,
    /// Whether `open_files` is the hard limit too (`prlimit --nofile=N:N`).
    open_files_hard: bool,
    /// The `cgroup.procs` of the cgroup to start in.
    cgroup_procs: Option<CString>,
    dir: PathBuf,
}

impl Launch {
    /// pidvisor as PID 1 of a new PID namespace, working directory `dir`.
    pub fn pid1<S: AsRef<str>>(dir: &TempDir, args: &[S]) -> Launch {
        Launch::new(Topology::Namespace, dir, args)
    }

    /// pidvisor as a plain child of the test: not PID 1.
    pub fn direct<S: AsRef<str>>(dir: &TempDir, args: &[S]) -> Launch {
        Launch::new(Topology::Direct, dir, args)
    }

    /// pidvisor as PID 1 with a terminal: `script -qec "unshare ... pidvisor ARGS"`.
    pub fn pid1_on_terminal<S: AsRef<str>>(dir: &TempDir, args: &[S]) -> Launch {
        Launch::new(Topology::Terminal, dir, args)
    }

    fn new<S: AsRef<str>>(topology: Topology, dir: &TempDir, args: &[S]) -> Launch {
        Launch {
            topology,
            args: args.iter().map(|a| a.as_ref().to_owned()).collect(),
            env: Vec::new(),
            passed_fd: None,
            stdout: None,
            stderr: None,
            open_files: None,
            open_files_hard: false,
            cgroup_procs: None,
            dir: dir.path().to_owned(),
        }
    }

    /// Starts pidvisor with this soft limit on open files (`ulimit -Sn`).
    pub fn open_files_limit(mut self, soft: libc::rlim_t) -> Launch {
        self.open_files = Some(soft);
        self
    }

    /// Starts pidvisor with this hard (and soft) limit on open files: it cannot raise it.
    pub fn hard_open_files_limit(mut self, limit: libc::rlim_t) -> Launch {
        self.open_files = Some(limit);
        self.open_files_hard = true;
        self
    }

    /// Starts pidvisor (and `unshare` in front of it) in the cgroup of this folder, as a
    /// container runtime does: it is there from its first instruction.
    pub fn in_cgroup(mut self, dir: &Path) -> Launch {
        let procs = dir.join("cgroup.procs");
        self.cgroup_procs = Some(CString::new(procs.as_os_str().as_bytes()).expect("no NUL"));
        self
    }

    /// Sets an environment variable for pidvisor.
    pub fn env(mut self, name: &str, value: &str) -> Launch {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Passes `file` to pidvisor as descriptor `target` (not close-on-exec).
    pub fn pass_fd(mut self, file: File, target: RawFd) -> Launch {
        self.passed_fd = Some((file, target));
        self
    }

    /// Gives pidvisor `file` as its stdout (say, a pipe the test reads when it chooses),
    /// instead of collecting it; [`Pidvisor::stdout_so_far`] is then empty.
    pub fn stdout_to(mut self, file: File) -> Launch {
        self.stdout = Some(file);
        self
    }

    /// The same for stderr ([`Pidvisor::stderr_so_far`] is then empty).
    pub fn stderr_to(mut self, file: File) -> Launch {
        self.stderr = Some(file);
        self
    }

    /// Starts it and returns at once.
    pub fn spawn(mut self) -> Pidvisor {
        let argv: Vec<String> = match self.topology {
            Topology::Namespace => unshare_words().into_iter().chain(self.args).collect(),
            Topology::Direct => std::iter::once(PIDVISOR.to_owned())
                .chain(self.args)
                .collect(),
            Topology::Terminal => {
                let line: Vec<String> = unshare_words()
                    .iter()
                    .chain(&self.args)
                    .map(|w| sh_quote(w))
                    .collect();
                vec![
                    "script".to_owned(),
                    "-qec".to_owned(),
                    line.join(" "),
                    "/dev/null".to_owned(),
                ]
            }
        };
        let command_line = argv
            .iter()
            .map(|w| sh_quote(w))
            .collect::<Vec<_>>()
            .join(" ");

        let mut command = Command::new(&argv[0]);
        command.args(&argv[1..]).current_dir(&self.dir);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("PIDVISOR_") {
                command.env_remove(name);
            }
        }
        if self.topology == Topology::Terminal {
            // script runs the line with $SHELL, which is whatever the developer uses.
            command.env("SHELL", "/bin/sh");
        }
        // Each pidvisor gets a control socket of its own, in its temp dir, rather than the
        // shared default /run/pidvisor/control.sock.
        if !self.env.iter().any(|(k, _)| k == "PIDVISOR_SOCKET") {
            command.env("PIDVISOR_SOCKET", self.dir.join("control.sock"));
        }
        // And s6-overlay's runtime folder (container_environment, services) of its own.
        if !self.env.iter().any(|(k, _)| k == "PIDVISOR_S6_DIR") {
            command.env("PIDVISOR_S6_DIR", self.dir.join("s6"));
        }
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        command
            .stdin(if self.topology == Topology::Terminal {
                // Kept open until the end, so that script never sees end-of-file.
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(self.stdout.take().map_or_else(Stdio::piped, Stdio::from))
            .stderr(self.stderr.take().map_or_else(Stdio::piped, Stdio::from));

        let passed = self
            .passed_fd
            .as_ref()
            .map(|(file, target)| (file.as_raw_fd(), *target));
        let rtmax = libc::SIGRTMAX();
        let open_files = self.open_files;
        let open_files_hard = self.open_files_hard;
        let cgroup_procs = self.cgroup_procs.take();
        // SAFETY: the closure makes only async-signal-safe system calls and does not
        // allocate, as required between fork and exec.
        unsafe {
            command.pre_exec(move || {
                if let Some(soft) = open_files {
                    set_open_files_limit(soft, open_files_hard)?;
                }
                if let Some(procs) = &cgroup_procs {
                    join_cgroup(procs)?;
                }
                clean_process_state(rtmax, passed)
            });
        }

        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command_line}: {e}"));
        let stdin = child.stdin.take();
        let stdout = match child.stdout.take() {
            Some(pipe) => Collector::start(pipe),
            None => Collector::start(io::empty()),
        };
        let stderr = match child.stderr.take() {
            Some(pipe) => Collector::start(pipe),
            None => Collector::start(io::empty()),
        };
        let host_pid = OnceCell::new();
        if self.topology == Topology::Direct {
            let _ = host_pid.set(child.id() as i32);
        }
        Pidvisor {
            child,
            _stdin: stdin,
            topology: self.topology,
            host_pid,
            command_line,
            dir: self.dir,
            stdout,
            stderr,
            status: None,
            finished: false,
        }
    }

    /// Starts it and returns once it is ready to take signals (its signalfd exists, so
    /// every signal it handles is blocked and queued, none lost).
    pub fn start(self) -> Pidvisor {
        let mut pidvisor = self.spawn();
        let pid = pidvisor.host_pid();
        pidvisor.wait_until("pidvisor has opened its signalfd", |_| {
            fd_targets(pid).iter().any(|t| t == "anon_inode:[signalfd]")
        });
        pidvisor
    }

    /// Runs it to the end.
    pub fn run(self) -> Run {
        self.spawn().finish(PATIENCE)
    }
}

/// Between fork and exec of pidvisor (or of the `unshare`/`script` in front of it): every
/// signal at its default, none blocked, every descriptor above 2 close-on-exec except
/// the one passed on purpose.
///
/// The dispositions are reset with the raw system call because glibc's `sigaction`
/// refuses its two internal signals (32 and 33), and those may well be ignored here:
/// glibc's `posix_spawn`, which cargo uses to start this test binary, sets them to
/// SIG_IGN in the child, and exec keeps an ignored signal ignored.
/// Moves the calling process into the cgroup of `procs` by writing "0" there
/// (async-signal-safe).
fn join_cgroup(procs: &CStr) -> io::Result<()> {
    // SAFETY: a valid C string; the descriptor is closed below.
    let fd = unsafe { libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: writes one valid byte to the descriptor just opened, then closes it.
    let written = unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) };
    let err = io::Error::last_os_error();
    // SAFETY: closes the descriptor opened above.
    unsafe { libc::close(fd) };
    if written == 1 { Ok(()) } else { Err(err) }
}

/// Lowers the soft RLIMIT_NOFILE, and the hard one too if `hard` (async-signal-safe).
fn set_open_files_limit(soft: libc::rlim_t, hard: bool) -> io::Result<()> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit get a valid pointer to a rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return Err(io::Error::last_os_error());
        }
        limit.rlim_cur = soft.min(limit.rlim_max);
        if hard {
            limit.rlim_max = limit.rlim_cur;
        }
        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

fn clean_process_state(rtmax: libc::c_int, passed: Option<(RawFd, RawFd)>) -> io::Result<()> {
    /// The kernel's `struct sigaction` on x86_64 (not glibc's, which is larger).
    #[repr(C)]
    struct KernelSigaction {
        handler: libc::sighandler_t,
        flags: libc::c_ulong,
        restorer: usize,
        mask: u64,
    }
    let default = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    // SAFETY: rt_sigaction, sigprocmask, close_range, fcntl and dup2 are async-signal-safe
    // system calls and get valid arguments.
    unsafe {
        for signo in 1..=rtmax {
            if signo != libc::SIGKILL && signo != libc::SIGSTOP {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    libc::c_long::from(signo),
                    &default as *const KernelSigaction,
                    std::ptr::null_mut::<KernelSigaction>(),
                    std::mem::size_of::<u64>(),
                );
            }
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        if libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
        let first: libc::c_long = 3;
        let last = libc::c_long::from(u32::MAX);
        let flags = libc::c_long::from(libc::CLOSE_RANGE_CLOEXEC);
        if libc::syscall(libc::SYS_close_range, first, last, flags) != 0 {
            for fd in 3..65_536 {
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            }
        }
        if let Some((source, target)) = passed {
            let rc = if source == target {
                libc::fcntl(target, libc::F_SETFD, 0)
            } else {
                libc::dup2(source, target)
            };
            if rc < 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

/// Reads a pipe to its end in a thread, so that the child never blocks on a full pipe and
/// the test can look at what has arrived so far.
struct Collector {
    buffer: Arc<Mutex<Vec<u8>>>,
    reader: JoinHandle<()>,
}

impl Collector {
    fn start(mut pipe: impl Read + Send + 'static) -> Collector {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&buffer);
        let reader = thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            loop {
                match pipe.read(&mut chunk) {
                    Ok(0) => return,
                    Ok(n) => sink
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return,
                }
            }
        });
        Collector { buffer, reader }
    }

    fn text(&self) -> String {
        let bytes = self.buffer.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    fn closed(&self) -> bool {
        self.reader.is_finished()
    }
}

// ---------------------------------------------------------------------------------------
// A running pidvisor

pub struct Pidvisor {
    /// `unshare`, `script` or pidvisor itself.
    child: Child,
    /// The terminal case's stdin: held open until the end.
    _stdin: Option<ChildStdin>,
    topology: Topology,
    host_pid: OnceCell<i32>,
    command_line: String,
    dir: PathBuf,
    stdout: Collector,
    stderr: Collector,
    status: Option<ExitStatus>,
    finished: bool,
}

impl Pidvisor {
    /// pidvisor's pid as the test sees it. Under `unshare` that is unshare's child, which
    /// appears a moment after unshare starts.
    pub fn host_pid(&self) -> i32 {
        *self.host_pid.get_or_init(|| {
            assert_eq!(
                self.topology,
                Topology::Namespace,
                "host_pid is not known for {:?}",
                self.topology
            );
            let mut found = None;
            poll_until(PATIENCE, "unshare has forked pidvisor", || {
                found = self.unshare_child()?;
                found.map(|_| ()).ok_or_else(String::new)
            });
            found.expect("poll_until returned, so the pid was found")
        })
    }

    /// `unshare`'s child (pidvisor) if it has forked it yet; `Err` if `unshare` is gone.
    fn unshare_child(&self) -> Result<Option<i32>, String> {
        let unshare = self.child.id();
        let children = format!("/proc/{unshare}/task/{unshare}/children");
        let text = fs::read_to_string(&children)
            .map_err(|e| format!("{children}: {e} (did unshare exit?)"))?;
        Ok(text.split_whitespace().next().and_then(|p| p.parse().ok()))
    }

    /// Sends `signo` to pidvisor.
    pub fn signal(&self, signo: libc::c_int) {
        let pid = self.host_pid();
        kill(pid, signo).unwrap_or_else(|e| panic!("kill({pid}, {signo}): {e}"));
    }

    /// Whether the process the test started has exited (and is reaped).
    pub fn has_exited(&mut self) -> bool {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("try_wait");
        }
        self.status.is_some()
    }

    /// [`wait_until`] that gives up at once, with a clear message, if pidvisor exits
    /// meanwhile.
    pub fn wait_until(&mut self, what: &str, mut condition: impl FnMut(&Pidvisor) -> bool) {
        wait_until(PATIENCE, what, || {
            if condition(self) {
                return true;
            }
            if self.has_exited() {
                // It may have done what was awaited just before it exited, and its last
                // output may still be on the way: look once more with everything in.
                self.await_pipes_closed();
                if condition(self) {
                    return true;
                }
                panic!(
                    "pidvisor exited ({:?}) while the test waited until {what}",
                    self.status
                );
            }
            false
        });
    }

    /// What pidvisor has written to its stdout so far.
    pub fn stdout_so_far(&self) -> String {
        self.stdout.text()
    }

    /// What pidvisor has written to its stderr so far.
    pub fn stderr_so_far(&self) -> String {
        self.stderr.text()
    }

    /// Waits until pidvisor's stderr contains `needle` (one of its log lines, usually).
    pub fn wait_for_log(&mut self, needle: &str) {
        self.wait_until(&format!("the log says {needle:?}"), |p| {
            p.stderr.text().contains(needle)
        });
    }

    /// Waits until the file at `path` exists (created by the main command).
    pub fn wait_for_file(&mut self, path: &str) {
        self.wait_until(&format!("{path} exists"), |_| Path::new(path).exists());
    }

    /// The main command's pid as the test sees it: pidvisor's child that leads its own
    /// process group (orphans that pidvisor adopted are in some other process's group).
    pub fn main_pid(&mut self) -> i32 {
        let pidvisor = self.host_pid();
        let mut main = None;
        self.wait_until("the main command has started", |_| {
            main = children_of(pidvisor)
                .into_iter()
                .find(|p| p.pid == p.pgrp)
                .map(|p| p.pid);
            main.is_some()
        });
        main.expect("found by wait_until")
    }

    /// A child of pidvisor that runs `comm`, once there is one: a service that prints
    /// and then execs is seen by its lines before its exec.
    pub fn child_running(&mut self, comm: &str) -> ProcStat {
        let pidvisor = self.host_pid();
        let mut child = None;
        self.wait_until(&format!("a child of pidvisor runs {comm}"), |_| {
            child = children_of(pidvisor).into_iter().find(|p| p.comm == comm);
            child.is_some()
        });
        child.expect("found by wait_until")
    }

    /// Sends SIGTERM, waits for the exit (with [`PATIENCE`]) and checks that it is a clean
    /// one: exit code 0, as for a container without a main command that was asked to stop.
    pub fn shut_down(self) -> Run {
        self.signal(libc::SIGTERM);
        let run = self.finish(PATIENCE);
        run.assert_code(0);
        run
    }

    /// Waits up to `timeout` for the exit, then collects the output.
    pub fn finish(mut self, timeout: Duration) -> Run {
        poll_until(timeout, "pidvisor has exited", || {
            if self.has_exited() {
                Ok(())
            } else {
                Err(String::new())
            }
        });
        let exited_at = Instant::now();
        self.await_pipes_closed();
        self.finished = true;
        Run {
            status: self.status.expect("exited"),
            exited_at,
            stdout: self.stdout.text(),
            stderr: self.stderr.text(),
            command_line: self.command_line.clone(),
            dir: self.dir.clone(),
        }
    }

    /// After pidvisor's exit: waits until its stdout and stderr have been read to the end.
    /// The pipes close when the last process holding them is gone; in a namespace that is
    /// immediate, as a subreaper it is what pidvisor promises.
    fn await_pipes_closed(&self) {
        let closed = Instant::now();
        while !(self.stdout.closed() && self.stderr.closed()) {
            if closed.elapsed() > Duration::from_secs(10) {
                panic!("pidvisor has exited but some process still holds its stdout or stderr");
            }
            thread::sleep(Duration::from_millis(1));
        }
    }

    fn kill_everything(&mut self) {
        match self.topology {
            Topology::Namespace => {
                let pid = self
                    .host_pid
                    .get()
                    .copied()
                    .or_else(|| self.unshare_child().ok().flatten());
                let folder = pid.and_then(services_cgroup_folder);
                let exited = pid.and_then(pid_fd);
                if let Some(pid) = pid {
                    let _ = kill(pid, libc::SIGKILL);
                }
                // --kill-child turns this into SIGKILL for the namespace's PID 1.
                let _ = self.child.kill();
                self.status = self.child.wait().ok();
                // A pidvisor killed with SIGKILL leaves its services' cgroup folder on the
                // host. Once PID 1 has exited, every process of its namespace is gone
                // (unshare's own exit says nothing of that), and the folder can go too.
                if let (Some(folder), Some(exited)) = (folder, exited) {
                    let mut wait = libc::pollfd {
                        fd: exited.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    };
                    // SAFETY: one valid pollfd.
                    let ready = unsafe { libc::poll(&mut wait, 1, PATIENCE.as_millis() as i32) };
                    if ready == 1 {
                        remove_cgroup_folder(&folder);
                    }
                }
                return;
            }
            Topology::Direct | Topology::Terminal => {
                let root = self.child.id() as i32;
                // Stop the tree first so that nothing forks while it is being killed.
                for _ in 0..2 {
                    for p in descendants_of(root) {
                        let _ = kill(p.pid, libc::SIGSTOP);
                    }
                }
                for p in descendants_of(root) {
                    let _ = kill(p.pid, libc::SIGKILL);
                }
                let _ = self.child.kill();
            }
        }
        self.status = self.child.wait().ok();
    }
}

/// The folder a pidvisor that is PID 1 of its namespace makes for its services' cgroups
/// (`pidvisor-NAMESPACE-1` in its own cgroup: see src/init/cgroup.rs), if the cgroup v2
/// tree is where this process's mount table says.
fn services_cgroup_folder(pid: i32) -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let namespace = fs::metadata(format!("/proc/{pid}/ns/pid")).ok()?.ino();
    let cgroups = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let own = cgroups.lines().find_map(|line| line.strip_prefix("0::"))?;
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mount = mountinfo.lines().find_map(|line| {
        let (fields, rest) = line.split_once(" - ")?;
        rest.starts_with("cgroup2 ")
            .then(|| fields.split(' ').nth(4))
            .flatten()
    })?;
    Some(
        Path::new(mount)
            .join(own.trim_start_matches('/'))
            .join(format!("pidvisor-{namespace}-1")),
    )
}

/// A descriptor that becomes readable when process `pid` exits (`pidfd_open`).
fn pid_fd(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags; the descriptor gets one owner below.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    // SAFETY: the kernel just returned it.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Removes a services' cgroup folder whose processes are all gone: its groups, then it.
fn remove_cgroup_folder(folder: &Path) {
    if let Ok(entries) = fs::read_dir(folder) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                let _ = fs::remove_dir(entry.path());
            }
        }
    }
    let _ = fs::remove_dir(folder);
}

impl Drop for Pidvisor {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let status = if self.has_exited() {
            self.status.map(describe_status).unwrap_or_default()
        } else {
            self.kill_everything();
            "still running when the test failed (killed by the test)".to_owned()
        };
        if thread::panicking() {
            eprintln!(
                "{}",
                Report {
                    command_line: &self.command_line,
                    status,
                    stdout: &self.stdout.text(),
                    stderr: &self.stderr.text(),
                    dir: &self.dir,
                }
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// The result

/// A finished run. Its `Display` is the whole story, for assertion messages.
pub struct Run {
    pub status: ExitStatus,
    /// When the test saw the exit (within a few milliseconds).
    pub exited_at: Instant,
    pub stdout: String,
    pub stderr: String,
    command_line: String,
    dir: PathBuf,
}

impl Run {
    /// The exit code; panics (with the whole story) if pidvisor was killed by a signal.
    pub fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| panic!("pidvisor did not exit normally\n{self}"))
    }

    pub fn assert_code(&self, expected: i32) {
        assert_eq!(
            self.status.code(),
            Some(expected),
            "unexpected exit of pidvisor\n{self}"
        );
    }

    /// stderr's lines that pidvisor itself wrote.
    pub fn log_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| l.starts_with("pidvisor: "))
            .collect()
    }
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Report {
            command_line: &self.command_line,
            status: describe_status(self.status),
            stdout: &self.stdout,
            stderr: &self.stderr,
            dir: &self.dir,
        }
        .fmt(f)
    }
}

fn describe_status(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signo)) => format!("killed by signal {signo}"),
        _ => format!("{status:?}"),
    }
}

struct Report<'a> {
    command_line: &'a str,
    status: String,
    stdout: &'a str,
    stderr: &'a str,
    dir: &'a Path,
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "--- command: {}", self.command_line)?;
        writeln!(f, "--- status: {}", self.status)?;
        writeln!(f, "--- temp dir: {}", self.dir.display())?;
        writeln!(f, "--- stdout:\n{}", self.stdout)?;
        write!(f, "--- stderr:\n{}--- end", self.stderr)
    }
}

/// Creates a named pipe (FIFO) at `path`.
pub fn mkfifo(path: &str) {
    let c_path = std::ffi::CString::new(path).expect("no NUL in path");
    // SAFETY: a valid NUL-terminated path.
    let rc = unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) };
    assert_eq!(rc, 0, "mkfifo {path}: {}", io::Error::last_os_error());
}

/// Writes a line into the FIFO at `path` once its reader has opened it (the open fails
/// with ENXIO until then, so this polls instead of blocking forever).
pub fn write_fifo(path: &str) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut fifo = None;
    poll_until(
        PATIENCE,
        format!("{path} has a reader"),
        || match fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
        {
            Ok(file) => {
                fifo = Some(file);
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        },
    );
    fifo.expect("opened")
        .write_all(b"go\n")
        .unwrap_or_else(|e| panic!("writing {path}: {e}"));
}
