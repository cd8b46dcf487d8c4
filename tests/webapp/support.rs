//! What every webapp test needs: the built example, a running instance that said it is
//! ready, its stdout and stderr line by line, and a plain HTTP/1.1 client.
//!
//! Nothing sleeps to let something happen: readiness is the newline on `--notify-fd`, the
//! bound port is read from the log line, and other waits are on lines, exits or answers,
//! against [`PATIENCE`]. A failing test prints the command line, stdout and stderr, and
//! kills the instance.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// How long to wait for something that normally takes milliseconds. Generous on purpose:
/// it only matters when the test is about to fail anyway.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The descriptor the instances get for readiness.
const NOTIFY_FD: RawFd = 3;

/// The example binary, built (or found up to date) once per test run: `cargo test` builds
/// examples, `cargo test --test webapp` alone does not.
pub fn binary() -> &'static str {
    static BINARY: OnceLock<String> = OnceLock::new();
    BINARY.get_or_init(|| {
        // This test is target/<triple>/<profile>/deps/webapp-<hash>; examples are built
        // next to deps/.
        let exe = std::env::current_exe().expect("the test binary's path");
        let profile_dir = exe
            .parent()
            .and_then(|deps| deps.parent())
            .expect("the test binary is in <profile>/deps");
        let mut build = Command::new(env!("CARGO"));
        build
            .args(["build", "--example", "webapp"])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if profile_dir.ends_with("release") {
            build.arg("--release");
        }
        let status = build
            .status()
            .unwrap_or_else(|e| panic!("cannot run {build:?}: {e}"));
        assert!(status.success(), "{build:?} failed: {status}");
        let path: PathBuf = profile_dir.join("examples").join("webapp");
        assert!(
            path.exists(),
            "{build:?} did not produce {}",
            path.display()
        );
        path.to_str().expect("UTF-8 target path").to_owned()
    })
}

/// Runs the binary to the end with `args` (and `env`), for the command-line tests.
pub fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(binary());
    command
        .args(args)
        .env_remove("WEBAPP_PORT")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
}

/// A running webapp that has said it is ready.
pub struct Webapp {
    child: Child,
    command_line: String,
    pub addr: SocketAddr,
    pub stdout: Lines,
    pub stderr: Lines,
    status: Option<ExitStatus>,
}

impl Webapp {
    /// Starts it on a free loopback port with `--notify-fd`, plus `args`, and waits for
    /// the readiness newline.
    pub fn start(args: &[&str]) -> Webapp {
        let mut full = vec!["--listen", "127.0.0.1:0"];
        full.extend_from_slice(args);
        Webapp::start_with(&full, &[])
    }

    /// Starts it with exactly `args` plus `--notify-fd`, and environment `env`.
    pub fn start_with(args: &[&str], env: &[(&str, &str)]) -> Webapp {
        let (ready_read, ready_write) = cloexec_pipe();
        let mut command = Command::new(binary());
        command
            .args(args)
            .args(["--notify-fd", &NOTIFY_FD.to_string()])
            .env_remove("WEBAPP_PORT")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let passed = ready_write.as_raw_fd();
        // SAFETY: only async-signal-safe system calls between fork and exec.
        unsafe {
            command.pre_exec(move || prepare_child(passed));
        }
        let command_line = format!("{command:?}");
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command_line}: {e}"));
        // Only the child holds the write end now: end-of-file says it closed it (or died).
        drop(ready_write);
        let stdout = Lines::collect(child.stdout.take().expect("piped stdout"));
        let stderr = Lines::collect(child.stderr.take().expect("piped stderr"));
        let mut webapp = Webapp {
            child,
            command_line,
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            stdout,
            stderr,
            status: None,
        };
        let notified = read_to_end_within(File::from(ready_read), PATIENCE);
        assert_eq!(
            notified, b"\n",
            "webapp should write one newline to its notify fd and close it"
        );
        let line = webapp
            .stderr
            .wait_for("the 'listening on' log line", |line| {
                line.contains("listening on ")
            });
        webapp.addr = listening_addr(&line);
        webapp
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// `GET target` with no other header.
    pub fn get(&self, target: &str) -> Reply {
        self.request("GET", target, &[])
    }

    /// One request on a connection of its own, sent to `127.0.0.1` on its port.
    pub fn request(&self, method: &str, target: &str, headers: &[(&str, &str)]) -> Reply {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.addr.port()));
        http(addr, method, target, headers)
            .unwrap_or_else(|e| panic!("{method} {target} to {addr} failed: {e}"))
    }

    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill has no memory-safety preconditions; the child is not reaped yet.
        let rc = unsafe { libc::kill(self.pid(), signal) };
        assert_eq!(rc, 0, "kill: {}", io::Error::last_os_error());
    }

    /// Waits for it to end, at most [`PATIENCE`], and for the last of its output.
    pub fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("waitpid") {
                self.status = Some(status);
                self.stdout.wait_for_end();
                self.stderr.wait_for_end();
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "webapp did not end within {PATIENCE:?}"
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// `VmRSS` from /proc, in KiB.
    pub fn resident_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("reading /proc/PID/status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("a VmRSS line")
    }
}

impl Drop for Webapp {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if thread::panicking() {
            eprintln!("command: {}", self.command_line);
            eprintln!("stdout:\n{}", self.stdout.all().join("\n"));
            eprintln!("stderr:\n{}", self.stderr.all().join("\n"));
        }
    }
}

/// In the child: the readiness pipe as descriptor 3, no core dump from `/crash`, and no
/// signal blocked (the test thread's mask would otherwise be inherited).
fn prepare_child(passed: RawFd) -> io::Result<()> {
    // SAFETY: dup2, fcntl, setrlimit and sigprocmask are async-signal-safe and get valid
    // arguments.
    unsafe {
        if passed == NOTIFY_FD {
            if libc::fcntl(NOTIFY_FD, libc::F_SETFD, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
        } else if libc::dup2(passed, NOTIFY_FD) != NOTIFY_FD {
            return Err(io::Error::last_os_error());
        }
        let no_core = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::setrlimit(libc::RLIMIT_CORE, &no_core) != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        if libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// A pipe whose ends other tests' children do not inherit.
fn cloexec_pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array it gets.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", io::Error::last_os_error());
    // SAFETY: both descriptors were just opened and are owned by nothing else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// Everything `file` gives until end-of-file, which must come within `timeout`.
fn read_to_end_within(mut file: File, timeout: Duration) -> Vec<u8> {
    let (sender, received) = mpsc::channel();
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = sender.send(file.read_to_end(&mut bytes).map(|_| bytes));
    });
    received
        .recv_timeout(timeout)
        .expect("end-of-file on the notify pipe in time")
        .expect("reading the notify pipe")
}

/// `127.0.0.1:41234` from `... listening on 127.0.0.1:41234 as node ...`.
fn listening_addr(line: &str) -> SocketAddr {
    line.split("listening on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|addr| addr.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
}

/// The lines a child writes to a pipe, collected by a thread as they come.
#[derive(Clone)]
pub struct Lines {
    shared: Arc<(Mutex<Collected>, Condvar)>,
}

#[derive(Default)]
struct Collected {
    lines: Vec<String>,
    /// End-of-file reached: every line is in.
    ended: bool,
}

impl Lines {
    fn collect(pipe: impl Read + Send + 'static) -> Lines {
        let lines = Lines {
            shared: Arc::new((Mutex::new(Collected::default()), Condvar::new())),
        };
        let collector = lines.clone();
        thread::spawn(move || {
            let (collected, grown) = &*collector.shared;
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                collected
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .lines
                    .push(line);
                grown.notify_all();
            }
            collected
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .ended = true;
            grown.notify_all();
        });
        lines
    }

    pub fn all(&self) -> Vec<String> {
        self.shared
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .lines
            .clone()
    }

    /// Waits for end-of-file: the writer has closed the pipe (or ended).
    fn wait_for_end(&self) {
        self.wait_until("end-of-file", |collected| collected.ended);
    }

    /// The first line that satisfies `wanted`, waiting for it at most [`PATIENCE`].
    pub fn wait_for(&self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        let mut found = None;
        self.wait_until(what, |collected| {
            found = collected.lines.iter().find(|line| wanted(line)).cloned();
            found.is_some()
        });
        found.expect("found")
    }

    /// Waits until at least `count` lines have come, and returns them all.
    pub fn wait_for_count(&self, count: usize) -> Vec<String> {
        self.wait_until(&format!("{count} lines"), |collected| {
            collected.lines.len() >= count
        });
        self.all()
    }

    fn wait_until(&self, what: &str, mut done: impl FnMut(&Collected) -> bool) {
        let deadline = Instant::now() + PATIENCE;
        let (collected, grown) = &*self.shared;
        let mut collected = collected.lock().unwrap_or_else(PoisonError::into_inner);
        while !done(&collected) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out after {PATIENCE:?} waiting for {what}"
            );
            collected = grown
                .wait_timeout(collected, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.as_str())
    }
}

/// One HTTP/1.1 request with `Connection: close`; the answer is read to end-of-file and
/// its body checked against `Content-Length`.
pub fn http(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> io::Result<Reply> {
    let mut stream = TcpStream::connect_timeout(&addr, PATIENCE)?;
    stream.set_read_timeout(Some(PATIENCE))?;
    let mut request =
        format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_reply(&raw, method == "HEAD")
}

fn parse_reply(raw: &[u8], head: bool) -> io::Result<Reply> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    let text = String::from_utf8_lossy(raw);
    let (head_part, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| bad(&format!("no end of headers in {text:?}")))?;
    let mut lines = head_part.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| bad(&format!("no status line in {text:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let reply = Reply {
        status,
        headers,
        body: body.to_owned(),
    };
    let length: usize = reply
        .header("content-length")
        .and_then(|length| length.parse().ok())
        .ok_or_else(|| bad(&format!("no Content-Length in {text:?}")))?;
    let expected = if head { 0 } else { length };
    if reply.body.len() != expected {
        return Err(bad(&format!(
            "body of {} bytes, not {expected}: {text:?}",
            reply.body.len()
        )));
    }
    Ok(reply)
}
