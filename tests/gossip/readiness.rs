//! `--notify-fd`: the newline comes once the agent has joined, not before (s6's protocol,
//! what pidvisor's `ready = { notify-fd = N }` waits for).

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::harness::{TempDir, wait_until};
use crate::network::Lan;
use crate::node::{Node, PATIENCE, gossip_binary};

/// A pipe: (read end, non-blocking; write end).
fn pipe() -> (File, OwnedFd) {
    let mut ends = [0; 2];
    // SAFETY: pipe2 fills the two descriptors, which we then own.
    assert_eq!(
        unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) },
        0
    );
    // SAFETY: both descriptors were just created and are owned by nobody else.
    unsafe { (File::from_raw_fd(ends[0]), OwnedFd::from_raw_fd(ends[1])) }
}

#[test]
fn the_agent_is_ready_once_joined_not_before() {
    let dir = TempDir::new("gossip-ready");
    let mut lan = Lan::new();
    let (seed_namespace, seed_address) = lan.add_node();
    let (namespace, _) = lan.add_node();
    let (mut readiness, write_end) = pipe();
    let write_fd = write_end.as_raw_fd();
    let socket = dir.file("ready.sock");
    let mut command = Command::new("ip");
    command
        .args(["netns", "exec", &namespace, gossip_binary()])
        .args(["agent", "--bind", "10.77.0.2:7946", "--node", "n2"])
        .args([
            "--join",
            "10.77.0.1:7946",
            "--socket",
            &socket,
            "--notify-fd",
            "3",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: dup2 is async-signal-safe; it puts the pipe's write end at descriptor 3 of
    // the child (without close-on-exec).
    unsafe {
        command.pre_exec(move || {
            if libc::dup2(write_fd, 3) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut agent = command
        .spawn()
        .expect("starting gossip agent --notify-fd 3");
    drop(write_end);
    let stderr = agent.stderr.take().expect("the agent's stderr");
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let collector = std::sync::Arc::clone(&log);
    std::thread::spawn(move || {
        let mut stderr = stderr;
        let mut chunk = [0u8; 4096];
        while let Ok(read @ 1..) = stderr.read(&mut chunk) {
            if let Ok(mut log) = collector.lock() {
                log.push_str(&String::from_utf8_lossy(&chunk[..read]));
            }
        }
    });
    let attempts = || {
        log.lock()
            .map_or(0, |log| log.matches("join: announcing").count())
    };
    wait_until(PATIENCE, "two join attempts while the seed is down", || {
        attempts() >= 2
    });
    let mut byte = [0u8; 1];
    let early = readiness.read(&mut byte);
    assert!(
        matches!(&early, Err(error) if error.kind() == ErrorKind::WouldBlock),
        "ready before joining: {early:?}"
    );

    let dir_for_seed = &dir;
    let _seed = Node::start(dir_for_seed, &seed_namespace, &seed_address, "n1", &[]);
    let started = Instant::now();
    let mut got = Vec::new();
    wait_until(PATIENCE, "the readiness newline", || {
        match readiness.read(&mut byte) {
            Ok(1) => got.push(byte[0]),
            Ok(_) => return true,
            Err(_) => {}
        }
        !got.is_empty()
    });
    assert_eq!(got, b"\n", "readiness wrote {got:?}");
    eprintln!(
        "readiness: n2 ready {:?} after its seed started",
        started.elapsed()
    );
    let _ = agent.kill();
    let _ = agent.wait();
}
