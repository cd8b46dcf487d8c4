//! One cluster node: `gossip agent` as the main command of its own pidvisor, PID 1 of a
//! fresh PID namespace inside the node's network namespace. Its log (stderr) is collected
//! by a thread; its event handler (`record.sh`) appends every event, with the handler's
//! environment, stdin and the time it ran, to `events.NAME` in the test's directory.

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::harness::{PIDVISOR, ProcStat, TempDir, descendants_of, poll_until, wait_until};

/// How long anything in these tests may take: failure detection is about 6 s, joins with
/// backoff a few more; on a loaded machine, much more.
pub const PATIENCE: Duration = Duration::from_secs(60);

pub const PORT: u16 = 7946;

/// The handler every node runs: one block per event, `BEGIN` with the time and the
/// environment, then stdin as it came, then `END` (a block being written is not read).
const RECORD_SCRIPT: &str = r#"#!/bin/sh
out="$(dirname "$0")/events.$SERF_SELF_NAME"
{
    echo "BEGIN $(date +%s.%N) $SERF_EVENT self=$SERF_SELF_NAME role=$SERF_SELF_ROLE zone=$SERF_TAG_ZONE"
    cat
    echo END
} >> "$out"
echo "recorded $SERF_EVENT"
"#;

/// One event as a handler saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// When the handler ran, in seconds since the epoch.
    pub at: f64,
    pub event: String,
    /// `self=NAME role=ROLE zone=ZONE`, from the handler's environment.
    pub environment: String,
    /// The stdin lines, one per member.
    pub members: Vec<String>,
}

impl Recorded {
    /// Whether `name` is one of the members this event is about.
    pub fn concerns(&self, name: &str) -> bool {
        self.members
            .iter()
            .any(|line| line.split('\t').next() == Some(name))
    }
}

pub struct Node {
    pub name: String,
    pub address: String,
    pub socket: String,
    events: String,
    process: Child,
    log: Arc<Mutex<String>>,
}

impl Node {
    /// Starts node `name` at `address` in `namespace`, with `extra` agent arguments.
    pub fn start(
        dir: &TempDir,
        namespace: &str,
        address: &str,
        name: &str,
        extra: &[&str],
    ) -> Node {
        let handler = dir.file("record.sh");
        if !dir.path().join("record.sh").exists() {
            fs::write(&handler, RECORD_SCRIPT).expect("writing record.sh");
            fs::set_permissions(&handler, fs::Permissions::from_mode(0o755))
                .expect("chmod record.sh");
        }
        let socket = dir.file(&format!("{name}.sock"));
        // Not pidvisor's default in /run: the nodes share the host's file system.
        let control = dir.file(&format!("pidvisor-{name}.sock"));
        let bind = format!("{address}:{PORT}");
        let zone = format!("zone={name}-zone");
        let mut agent = vec![
            "agent",
            "--bind",
            &bind,
            "--node",
            name,
            "--tag",
            "role=web",
            "--tag",
            &zone,
            "--socket",
            &socket,
            "--event-handler",
            &handler,
        ];
        agent.extend_from_slice(extra);
        let mut process = Command::new("ip")
            .args(["netns", "exec", namespace])
            .args(["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"])
            .args([PIDVISOR, "--socket", &control, "--"])
            // s6-overlay's runtime folder of its own, not the host's /var/run/s6.
            .env("PIDVISOR_S6_DIR", dir.file(&format!("s6-{name}")))
            .arg(gossip_binary())
            .args(&agent)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting ip netns exec ... pidvisor -- gossip");
        let log = Arc::new(Mutex::new(String::new()));
        if let Some(stderr) = process.stderr.take() {
            let log = Arc::clone(&log);
            thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        Node {
            name: name.to_string(),
            address: address.to_string(),
            socket,
            events: dir.file(&format!("events.{name}")),
            process,
            log,
        }
    }

    /// The agent's stderr so far (its log and pidvisor's).
    pub fn log(&self) -> String {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits until the log has a line containing `text`.
    pub fn wait_for_log(&self, text: &str) {
        poll_until(
            PATIENCE,
            format!("{}'s log shows {text:?}", self.name),
            || {
                if self.log().contains(text) {
                    Ok(())
                } else {
                    Err(self.log())
                }
            },
        );
    }

    /// Every event the handler recorded so far.
    pub fn events(&self) -> Vec<Recorded> {
        parse_events(&fs::read_to_string(&self.events).unwrap_or_default())
    }

    /// Waits for the first `event` about member `about`, and returns it.
    pub fn wait_for_event(&self, event: &str, about: &str) -> Recorded {
        let mut found = None;
        poll_until(
            PATIENCE,
            format!("{} records {event} of {about}", self.name),
            || {
                let events = self.events();
                found = events
                    .iter()
                    .find(|seen| seen.event == event && seen.concerns(about))
                    .cloned();
                match found {
                    Some(_) => Ok(()),
                    None => Err(format!("events: {events:#?}\nlog:\n{}", self.log())),
                }
            },
        );
        found.expect("poll_until returned without a match")
    }

    /// `gossip members --format json` against this node: (name, status) pairs, and the
    /// whole document for messages.
    pub fn members(&self) -> (Vec<(String, String)>, String) {
        let output = Command::new(gossip_binary())
            .args(["members", "--format", "json", "--socket", &self.socket])
            .output()
            .expect("running gossip members");
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let Ok(document) = serde_json::from_str::<serde_json::Value>(&text) else {
            return (
                Vec::new(),
                format!("{text}{}", String::from_utf8_lossy(&output.stderr)),
            );
        };
        let members = document["members"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|member| {
                let field = |key: &str| member[key].as_str().unwrap_or_default().to_string();
                (field("name"), field("status"))
            })
            .collect();
        (members, text)
    }

    /// Waits until this node lists exactly `expected` (name, status) pairs, in any order.
    pub fn wait_for_members(&self, expected: &[(&str, &str)]) {
        let mut expected: Vec<(String, String)> = expected
            .iter()
            .map(|(name, status)| (name.to_string(), status.to_string()))
            .collect();
        expected.sort();
        poll_until(
            PATIENCE,
            format!("{} lists {expected:?}", self.name),
            || {
                let (mut members, text) = self.members();
                members.sort();
                if members == expected {
                    Ok(())
                } else {
                    Err(text)
                }
            },
        );
    }

    /// Every process of the node, as seen from the host.
    pub fn processes(&self) -> Vec<ProcStat> {
        descendants_of(i32::try_from(self.process.id()).expect("pid fits i32"))
    }

    /// The host pid of the process named `command` in this node's PID namespace.
    fn pid_of(&self, command: &str) -> i32 {
        let root = i32::try_from(self.process.id()).expect("pid fits i32");
        let mut pid = 0;
        wait_until(
            PATIENCE,
            format!("{command} of {} is running", self.name),
            || {
                pid = descendants_of(root)
                    .iter()
                    .find(|process| process.comm == command)
                    .map_or(0, |process| process.pid);
                pid != 0
            },
        );
        pid
    }

    /// SIGKILL to the agent itself: a crash, no goodbye. Returns when it was sent.
    pub fn kill_agent(&self) -> f64 {
        let pid = self.pid_of("gossip");
        let sent = now();
        // SAFETY: kill(2) on a pid we just found among our own descendants.
        let sent_ok = unsafe { libc::kill(pid, libc::SIGKILL) };
        assert_eq!(sent_ok, 0, "kill -9 {pid}");
        sent
    }

    /// SIGTERM to the node's pidvisor, which forwards it to the agent: a graceful stop.
    /// Returns when it was sent.
    pub fn terminate(&self) -> f64 {
        let pid = self.pid_of("pidvisor");
        let sent = now();
        // SAFETY: kill(2) on a pid we just found among our own descendants.
        let sent_ok = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(sent_ok, 0, "kill -TERM {pid}");
        sent
    }

    /// Waits for the node's pidvisor (and so the agent) to exit.
    pub fn wait_for_exit(&mut self) -> ExitStatus {
        let mut status = None;
        wait_until(PATIENCE, format!("{} exits", self.name), || {
            status = self.process.try_wait().ok().flatten();
            status.is_some()
        });
        status.expect("wait_until returned without a status")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // unshare --kill-child: its death takes the whole PID namespace with it.
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Seconds since the epoch, comparable with the handler's `date +%s.%N`.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64())
}

fn parse_events(text: &str) -> Vec<Recorded> {
    let mut events = Vec::new();
    let mut current: Option<Recorded> = None;
    for line in text.lines() {
        if let Some(header) = line.strip_prefix("BEGIN ") {
            let mut words = header.splitn(3, ' ');
            current = Some(Recorded {
                at: words.next().and_then(|at| at.parse().ok()).unwrap_or(0.0),
                event: words.next().unwrap_or_default().to_string(),
                environment: words.next().unwrap_or_default().to_string(),
                members: Vec::new(),
            });
        } else if line == "END" {
            events.extend(current.take());
        } else if let Some(event) = current.as_mut() {
            event.members.push(line.to_string());
        }
    }
    events
}

/// The example binary, built once if `cargo test --test gossip` did not build it.
pub fn gossip_binary() -> &'static str {
    static BINARY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BINARY.get_or_init(|| {
        let debug = std::path::Path::new(PIDVISOR)
            .parent()
            .expect("pidvisor's directory");
        let binary = debug.join("examples").join("gossip");
        if !binary.exists() {
            let status = Command::new(env!("CARGO"))
                .args(["build", "--example", "gossip"])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .expect("running cargo build --example gossip");
            assert!(status.success(), "cargo build --example gossip failed");
        }
        binary.to_string_lossy().into_owned()
    })
}
