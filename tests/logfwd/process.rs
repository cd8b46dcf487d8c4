//! Runs the logfwd binary (target/<triple>/{debug,release}/examples/
//! logfwd, built once with `cargo build --example logfwd` if missing) with a piped stdin,
//! and collects its stdout and stderr in the background so that tests can wait on them.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::support::{PATIENCE, wait_until};

/// The debug build of the example, built on first use if `cargo test` did not build it.
pub fn binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| built("debug", &[]))
}

/// The release build, for the throughput measurement.
pub fn release_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| built("release", &["--release"]))
}

fn built(profile: &str, flags: &[&str]) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = crate::build_dir::build_dir(profile).join("examples/logfwd");
    if profile == "release" || !path.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--example", "logfwd"])
            .args(flags)
            .current_dir(root)
            .status()
            .expect("run cargo build --example logfwd");
        assert!(
            status.success(),
            "cargo build --example logfwd {flags:?} failed"
        );
    }
    path
}

pub struct Logfwd {
    pub child: Child,
    stdin: Option<ChildStdin>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
}

impl Logfwd {
    /// Starts `binary` with `args`; `PIDVISOR_SERVICE` is set as pidvisor sets it for the
    /// logger of service `webapp`.
    pub fn start_with(binary: &Path, args: &[&str]) -> Logfwd {
        let mut child = Command::new(binary)
            .args(args)
            .env("PIDVISOR_SERVICE", "webapp/log")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start logfwd");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            collect(child.stdout.take().expect("piped"), stdout.clone()),
            collect(child.stderr.take().expect("piped"), stderr.clone()),
        ];
        Logfwd {
            stdin: child.stdin.take(),
            child,
            stdout,
            stderr,
            readers,
        }
    }

    pub fn start(args: &[&str]) -> Logfwd {
        Logfwd::start_with(binary(), args)
    }

    pub fn write(&mut self, bytes: &[u8]) {
        self.stdin
            .as_mut()
            .expect("stdin still open")
            .write_all(bytes)
            .expect("write to logfwd's stdin");
    }

    /// Hands stdin over (to a writer thread); dropping it is end of input.
    pub fn take_stdin(&mut self) -> ChildStdin {
        self.stdin.take().expect("stdin still open")
    }

    /// Closes stdin: end of input.
    pub fn close_stdin(&mut self) {
        self.stdin.take();
    }

    pub fn stdout(&self) -> Vec<u8> {
        self.stdout.lock().expect("stdout buffer").clone()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().expect("stderr buffer")).into_owned()
    }

    /// Waits until stdout has at least `count` lines (the echo of what was read).
    pub fn wait_for_echo(&self, count: usize) {
        wait_until(
            PATIENCE,
            &format!("logfwd has echoed {count} lines"),
            || {
                let lines = self
                    .stdout
                    .lock()
                    .expect("stdout buffer")
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count();
                if lines >= count {
                    Ok(())
                } else {
                    Err(format!("{lines} lines; stderr: {}", self.stderr()))
                }
            },
        );
    }

    /// Waits until stderr contains `text`.
    pub fn wait_for_log(&self, text: &str) {
        wait_until(PATIENCE, &format!("logfwd logs {text:?}"), || {
            let stderr = self.stderr();
            if stderr.contains(text) {
                Ok(())
            } else {
                Err(stderr)
            }
        });
    }

    /// Waits for the exit (within `timeout`); returns the status and how long it took.
    pub fn wait_exit(&mut self, timeout: Duration) -> (ExitStatus, Duration) {
        let start = Instant::now();
        let status = wait_until(timeout, "logfwd exits", || match self.child.try_wait() {
            Ok(Some(status)) => Ok(status),
            _ => Err(self.stderr()),
        });
        let took = start.elapsed();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        (status, took)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Logfwd {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if thread::panicking() {
            eprintln!("logfwd's stderr:\n{}", self.stderr());
        }
    }
}

fn collect(mut from: impl Read + Send + 'static, into: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = [0u8; 64 << 10];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            into.lock()
                .expect("output buffer")
                .extend_from_slice(&buf[..n]);
        }
    })
}
