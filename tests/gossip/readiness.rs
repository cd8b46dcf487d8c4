//! `--notify-fd`: the newline comes once the agent has joined, not before (s6's protocol,
//! what pidvisor's `ready = { notify-fd = N }` waits for). The agent runs directly in its
//! network namespace here, with descriptor 3 a pipe the test reads.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Instant;

use crate::harness::{TempDir, wait_until};
use crate::network::Lan;
use crate::node::{Node, PATIENCE, gossip_binary};

/// An agent with `--notify-fd 3`: the process, the read end of its descriptor 3
/// (non-blocking) and its log.
struct Notifying {
    process: Child,
    readiness: File,
    log: Arc<Mutex<String>>,
}

impl Notifying {
    fn start(dir: &TempDir, namespace: &str, args: &[&str]) -> Notifying {
        let mut ends = [0; 2];
        // SAFETY: pipe2 fills the two descriptors, which we then own.
        let created = unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) };
        assert_eq!(created, 0, "pipe2");
        // SAFETY: both descriptors were just created and are owned by nobody else.
        let (readiness, write_end) =
            unsafe { (File::from_raw_fd(ends[0]), OwnedFd::from_raw_fd(ends[1])) };
        let write_fd = write_end.as_raw_fd();
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", namespace, gossip_binary(), "agent"])
            .args(args)
            .args(["--socket", &dir.file("agent.sock"), "--notify-fd", "3"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // SAFETY: dup2 is async-signal-safe; it puts the pipe's write end at descriptor 3
        // of the child, without close-on-exec.
        unsafe {
            command.pre_exec(move || {
                if libc::dup2(write_fd, 3) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut process = command
            .spawn()
            .expect("starting gossip agent --notify-fd 3");
        drop(write_end);
        let log = Arc::new(Mutex::new(String::new()));
        if let Some(mut stderr) = process.stderr.take() {
            let log = Arc::clone(&log);
            thread::spawn(move || {
                let mut chunk = [0u8; 4096];
                while let Ok(read @ 1..) = stderr.read(&mut chunk) {
                    let text = String::from_utf8_lossy(&chunk[..read]).into_owned();
                    log.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push_str(&text);
                }
            });
        }
        Notifying {
            process,
            readiness,
            log,
        }
    }

    fn log(&self) -> String {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// What descriptor 3 holds now, without waiting: `None` while nothing was written.
    fn readiness_so_far(&mut self) -> Option<Vec<u8>> {
        let mut bytes = [0u8; 16];
        match self.readiness.read(&mut bytes) {
            Ok(read) => Some(bytes[..read].to_vec()),
            Err(error) if error.kind() == ErrorKind::WouldBlock => None,
            Err(error) => panic!("reading the readiness pipe: {error}"),
        }
    }

    fn wait_until_ready(&mut self) {
        let mut written = None;
        wait_until(PATIENCE, "the readiness newline", || {
            written = self.readiness_so_far();
            written.is_some()
        });
        assert_eq!(written.as_deref(), Some(&b"\n"[..]), "log:\n{}", self.log());
    }
}

impl Drop for Notifying {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

#[test]
fn the_agent_is_ready_once_joined_not_before() {
    let dir = TempDir::new("gossip-ready");
    let mut lan = Lan::new();
    let (seed_namespace, seed_address) = lan.add_node();
    let (namespace, _) = lan.add_node();
    let mut agent = Notifying::start(
        &dir,
        &namespace,
        &[
            "--bind",
            "10.77.0.2:7946",
            "--node",
            "n2",
            "--join",
            "10.77.0.1:7946",
        ],
    );
    wait_until(PATIENCE, "two join attempts while the seed is down", || {
        agent.log().matches("join: announcing").count() >= 2
    });
    assert_eq!(agent.readiness_so_far(), None, "ready before joining");

    let _seed = Node::start(&dir, &seed_namespace, &seed_address, "n1", &[]);
    let started = Instant::now();
    agent.wait_until_ready();
    eprintln!(
        "readiness: n2 ready {:?} after its seed started",
        started.elapsed()
    );
}

#[test]
fn an_agent_whose_only_seed_is_itself_is_ready_at_once() {
    let dir = TempDir::new("gossip-self-seed");
    let mut lan = Lan::new();
    let (namespace, _) = lan.add_node();
    let mut agent = Notifying::start(
        &dir,
        &namespace,
        &["--bind", "10.77.0.1:7946", "--join", "10.77.0.1:7946"],
    );
    agent.wait_until_ready();
    wait_until(PATIENCE, "the log says it starts the cluster", || {
        agent.log().contains("the only seed is this node")
    });
}
