//! The Docker side of the container tests: finds the engine (or skips), builds the images
//! once per test run, and runs containers that are always removed, with every wait
//! bounded.
//!
//! - [`images`] makes the base image (`base-image.sh`: debootstrap, cached) and builds
//!   `Dockerfile.example` unchanged from the repository root, with the base image in place
//!   of `debian:bookworm-slim` and `rust:1-bookworm` and the host's release binaries
//!   (`PREBUILT`). Without an engine it returns `None` after saying "skipped: no Docker
//!   engine" once; with `CI=true` a missing engine fails the test instead.
//! - [`Container`] is a uniquely named container, removed (`docker rm -f`) when dropped,
//!   whether the test passed or not.
//! - [`Attached`] is an attached `docker run`: its output arrives line by line
//!   ([`Attached::wait_for_line`]) and its exit status is the container's.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// How long to wait for something that normally takes a second: generous, since it only
/// matters when the test is about to fail anyway, and CI machines are loaded.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// How long making the images may take: a debootstrap, an `apt-get install` in the
/// Dockerfile, on a cold machine.
const BUILD_PATIENCE: Duration = Duration::from_secs(900);

/// The repository: the build context.
const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// Where `cargo build --release` put the binaries, relative to the repository (the
/// build context): next to the pidvisor under test, whatever its target.
pub fn release_dir() -> PathBuf {
    crate::build_dir::build_dir_in_repo("release")
}

/// The images every test uses.
pub struct Images {
    /// `Dockerfile.example` built with the host's release binaries.
    pub example: String,
    /// `examples/s6-migration/Dockerfile`: an s6-overlay v2 image with pidvisor in place
    /// of the overlay.
    pub s6_migration: String,
}

/// The images, built on first use; `None` (after a note on stderr, once) when there is no
/// Docker engine and CI is not set.
pub fn images() -> Option<&'static Images> {
    static IMAGES: OnceLock<Option<Result<Images, String>>> = OnceLock::new();
    let images = IMAGES.get_or_init(|| {
        if let Err(why) = engine_answers() {
            if std::env::var("CI").is_ok_and(|ci| ci == "true") {
                return Some(Err(format!("no Docker engine, and CI=true: {why}")));
            }
            // Straight to stderr, past the test harness's capture, so that it is seen.
            let _ = writeln!(io::stderr(), "skipped: no Docker engine ({why})");
            return None;
        }
        Some(build_images())
    });
    match images {
        None => None,
        Some(Ok(images)) => Some(images),
        Some(Err(why)) => panic!("{why}"),
    }
}

fn engine_answers() -> Result<(), String> {
    let output = run_bounded(
        Command::new("docker").args(["version", "--format", "{{.Server.Version}}"]),
        Duration::from_secs(20),
    )?;
    if output.status.success() {
        Ok(())
    } else {
        Err(output.stderr.trim().to_owned())
    }
}

fn build_images() -> Result<Images, String> {
    build_release()?;
    let script = Path::new(REPO).join("tests/containers/base-image.sh");
    let base = run_bounded(Command::new("bash").arg(&script), BUILD_PATIENCE)?;
    if !base.status.success() {
        return Err(format!("{} failed:\n{}", script.display(), base.stderr));
    }
    let base = base.stdout.trim().to_owned();

    Ok(Images {
        example: build_image(&base, "Dockerfile.example", "example")?,
        s6_migration: build_image(&base, "examples/s6-migration/Dockerfile", "s6-migration")?,
    })
}

/// `docker build` of one of the repository's Dockerfiles, unchanged, with the base image
/// and the host's release binaries; its tag.
fn build_image(base: &str, dockerfile: &str, what: &str) -> Result<String, String> {
    // One tag per checkout, so that two branches' tests on one engine do not overwrite
    // each other's image, and a rerun replaces its own.
    let tag = format!("pidvisor-test-{what}:{:016x}", fnv1a(REPO.as_bytes()));
    let build = run_bounded(
        Command::new("docker")
            .current_dir(REPO)
            // --force-rm: a failed step leaves no stopped container behind.
            .args(["build", "--force-rm", "--file", dockerfile])
            .args(["--build-arg", &format!("RUST_IMAGE={base}")])
            .args(["--build-arg", &format!("BASE_IMAGE={base}")])
            .args([
                "--build-arg",
                &format!("PREBUILT={}", release_dir().display()),
            ])
            .args(["--tag", &tag, "."]),
        BUILD_PATIENCE,
    )?;
    if !build.status.success() {
        return Err(format!(
            "docker build -f {dockerfile} failed:\n{}{}",
            build.stdout, build.stderr
        ));
    }
    Ok(tag)
}

/// The image gets the release binaries (pidvisor and the example programs), which
/// `cargo test` does not build: build them (a no-op when they are up to date), so that the
/// image never holds old code.
fn build_release() -> Result<(), String> {
    let build = run_bounded(
        Command::new(env!("CARGO")).current_dir(REPO).args([
            "build",
            "--release",
            "--quiet",
            "--bins",
            "--examples",
        ]),
        BUILD_PATIENCE,
    )?;
    if build.status.success() {
        Ok(())
    } else {
        Err(format!(
            "cargo build --release --bins --examples failed:\n{}",
            build.stderr
        ))
    }
}

/// A stable hash (FNV-1a), for the image tag.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The path of a fixture folder in `tests/containers/fixtures/`, for `-v`.
pub fn fixture(name: &str) -> String {
    format!("{REPO}/tests/containers/fixtures/{name}")
}

// ---------------------------------------------------------------------------------------
// Commands

/// A finished command's exit status and output.
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `command` to the end, or kills it after `timeout`.
pub fn run_bounded(command: &mut Command, timeout: Duration) -> Result<Output, String> {
    let shown = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    let stdout = read_all(child.stdout.take());
    let stderr = read_all(child.stderr.take());
    let status = wait_bounded(&mut child, timeout)
        .ok_or_else(|| format!("{shown} did not finish within {timeout:?}"))?;
    Ok(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// `docker ARGS`, which must succeed: its stdout.
pub fn docker(args: &[&str]) -> String {
    let output = run_bounded(Command::new("docker").args(args), PATIENCE)
        .unwrap_or_else(|why| panic!("{why}"));
    assert!(
        output.status.success(),
        "docker {args:?} failed ({}):\n{}{}",
        output.status,
        output.stdout,
        output.stderr
    );
    output.stdout
}

fn read_all(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// The child's exit status, or `None` (and the child killed) once `timeout` has passed.
fn wait_bounded(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

// ---------------------------------------------------------------------------------------
// Containers

/// A container name of this test run, removed with `docker rm -f` when dropped.
pub struct Container {
    pub name: String,
}

impl Container {
    pub fn new(what: &str) -> Container {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        Container {
            name: format!(
                "pidvisor-test-{}-{}-{what}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ),
        }
    }

    /// `docker run --name NAME` with these options before the image, and `command` after.
    pub fn run_args(&self, options: &[&str], image: &str, command: &[&str]) -> Vec<String> {
        let mut args = vec!["run".to_owned(), "--name".to_owned(), self.name.clone()];
        args.extend(["--label".to_owned(), "pidvisor-test=1".to_owned()]);
        args.extend(options.iter().map(|&option| option.to_owned()));
        args.push(image.to_owned());
        args.extend(command.iter().map(|&word| word.to_owned()));
        args
    }

    /// Runs the container to its end (bounded) and returns its exit code and output.
    pub fn run(&self, options: &[&str], image: &str, command: &[&str]) -> Output {
        let args = self.run_args(options, image, command);
        run_bounded(Command::new("docker").args(&args), PATIENCE)
            .unwrap_or_else(|why| panic!("{why}"))
    }

    /// Starts the container attached: its output is read line by line as it comes.
    pub fn start(&self, options: &[&str], image: &str, command: &[&str]) -> Attached {
        let args = self.run_args(options, image, command);
        Attached::spawn(Command::new("docker").args(&args))
    }

    /// `docker exec NAME sh -c SCRIPT`: its stdout.
    pub fn sh(&self, script: &str) -> String {
        docker(&["exec", &self.name, "sh", "-c", script])
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = run_bounded(
            Command::new("docker").args(["rm", "--force", "--volumes", &self.name]),
            PATIENCE,
        );
    }
}

/// A running command whose stdout and stderr lines are collected as they arrive.
pub struct Attached {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Attached {
    pub fn spawn(command: &mut Command) -> Attached {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
        let (sender, lines) = mpsc::channel();
        let seen = Arc::new(Mutex::new(Vec::new()));
        for pipe in [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let sender = sender.clone();
            let seen = Arc::clone(&seen);
            thread::spawn(move || {
                for line in BufReader::new(pipe).split(b'\n').map_while(Result::ok) {
                    // A terminal's lines end in \r\n and carry its echo; keep the text.
                    let line = String::from_utf8_lossy(&line).replace('\r', "");
                    seen.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(line.clone());
                    let _ = sender.send(line);
                }
            });
        }
        let stdin = child.stdin.take();
        Attached {
            child,
            stdin,
            lines,
            seen,
        }
    }

    /// Waits for a line that contains `needle` (one seen earlier counts), and returns it.
    pub fn wait_for_line(&self, needle: &str) -> String {
        self.wait_for_lines(needle, 1).swap_remove(0)
    }

    /// Waits until `count` lines so far contain `needle`, and returns them.
    pub fn wait_for_lines(&self, needle: &str, count: usize) -> Vec<String> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let found: Vec<String> = (self.seen.lock().unwrap_or_else(PoisonError::into_inner))
                .iter()
                .filter(|line| line.contains(needle))
                .cloned()
                .collect();
            if found.len() >= count {
                return found;
            }
            // Each new line wakes the wait; its text is in `seen` already.
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => panic!(
                    "timed out after {PATIENCE:?} waiting for {count} line(s) with \
                     {needle:?}; output so far:\n{}",
                    self.output()
                ),
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "the output ended before {count} line(s) with {needle:?}; output:\n{}",
                    self.output()
                ),
            }
        }
    }

    /// Every line so far, stdout and stderr interleaved as they arrived.
    pub fn output(&self) -> String {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .join("\n")
    }

    /// Writes `text` to the command's stdin.
    pub fn send(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is open until finish");
        stdin
            .write_all(text.as_bytes())
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("writing {text:?} to the command: {e}"));
    }

    /// Waits (bounded) for the command to exit: its exit code.
    pub fn finish(mut self) -> (i32, String) {
        self.stdin = None;
        let status = wait_bounded(&mut self.child, PATIENCE).unwrap_or_else(|| {
            panic!(
                "did not exit within {PATIENCE:?}; output:\n{}",
                self.output()
            )
        });
        // The readers end with the pipes; what they read is in `seen` by then.
        let deadline = Instant::now() + PATIENCE;
        while self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .is_ok()
        {}
        let code = status.code().unwrap_or_else(|| panic!("killed: {status}"));
        (code, self.output())
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
