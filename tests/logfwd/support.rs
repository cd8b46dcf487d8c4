//! What every test needs: a temp dir of its own, free loopback ports, and waiting on a
//! condition against a deadline (never a fixed sleep).

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// How long to wait for something that normally takes milliseconds. Generous on purpose:
/// it only matters when the test is about to fail anyway.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Polls `check` until it returns `Ok`; panics once `timeout` has passed, saying what was
/// awaited and what was seen last.
pub fn wait_until<T>(
    timeout: Duration,
    what: &str,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let start = Instant::now();
    let mut pause = Duration::from_micros(200);
    loop {
        match check() {
            Ok(value) => return value,
            Err(seen) if start.elapsed() >= timeout => {
                panic!("timed out after {timeout:?} waiting until {what}; last seen: {seen}")
            }
            Err(_) => {}
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

/// A directory of the test's own, removed when the test passes (kept for a look when it
/// fails).
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("logfwd-{name}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create the test's temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("test files kept in {}", self.0.display());
        } else {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("its address").port()
}

/// `count` lines `line NNNNNNN ` padded with `x` to `width` bytes, numbered from `first`.
pub fn numbered_lines(first: usize, count: usize, width: usize) -> String {
    let mut text = String::with_capacity(count * (width + 1));
    for n in first..first + count {
        let start = text.len();
        text += &format!("line {n:07} ");
        while text.len() - start < width {
            text.push('x');
        }
        text.push('\n');
    }
    text
}

/// The numbers of the `line NNNNNNN` messages in `messages`, in order.
pub fn numbers(messages: &[String]) -> Vec<usize> {
    messages
        .iter()
        .filter_map(|m| m.strip_prefix("line ")?.get(..7)?.parse().ok())
        .collect()
}

/// How `numbers` differs from `first..first+count` once each: (lost, duplicated,
/// out of order).
pub fn tally(numbers: &[usize], first: usize, count: usize) -> (usize, usize, usize) {
    let mut seen = vec![0usize; count];
    for &n in numbers {
        if (first..first + count).contains(&n) {
            seen[n - first] += 1;
        }
    }
    let lost = seen.iter().filter(|&&c| c == 0).count();
    let duplicated = seen.iter().filter(|&&c| c > 1).map(|c| c - 1).sum();
    let out_of_order = numbers.windows(2).filter(|w| w[1] <= w[0]).count();
    (lost, duplicated, out_of_order)
}
