//! Event handlers with Serf's interface: each event runs the matching handlers one at a
//! time on a thread of their own, so that a slow script never delays the gossip.
//!
//! A handler is `/bin/sh -c PROGRAM` in its own process group, with `SERF_EVENT`,
//! `SERF_SELF_NAME`, `SERF_SELF_ROLE` and `SERF_TAG_<KEY>` set and one line per member on
//! stdin. Its stdout and stderr lines are logged with a `handler EVENT:` prefix. When it
//! outlives the timeout the whole group gets SIGKILL, and it is reaped either way.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::cli::UsageError;
use crate::events::{Event, EventKind};
use crate::identity::NodeId;

/// One `--event-handler [FILTER=]PROGRAM`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandlerSpec {
    /// The events it runs for; empty means all of them.
    pub filter: Vec<EventKind>,
    pub program: String,
}

impl HandlerSpec {
    /// Reads `[FILTER=]PROGRAM`. The text before the first `=` is a filter when it looks
    /// like one (lower-case letters, `-`, `:` and commas only), so that a program such as
    /// `LANG=C ./script` keeps its `=`. A program whose first word is a path must be an
    /// executable file now, not at the first event.
    pub fn parse(text: &str) -> Result<HandlerSpec, UsageError> {
        let (filter, program) = match text.split_once('=') {
            Some((names, program))
                if !names.is_empty()
                    && names
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c == '-' || c == ':' || c == ',') =>
            {
                (parse_filter(names)?, program)
            }
            _ => (Vec::new(), text),
        };
        let Some(first_word) = program.split_whitespace().next() else {
            return Err(UsageError(format!(
                "--event-handler {text:?}: the program is empty"
            )));
        };
        if first_word.contains('/') && !is_executable(Path::new(first_word)) {
            return Err(UsageError(format!(
                "--event-handler {text:?}: {first_word} is not an executable file \
                 (check the path, or chmod +x it)"
            )));
        }
        Ok(HandlerSpec {
            filter,
            program: program.to_string(),
        })
    }

    fn wants(&self, kind: EventKind) -> bool {
        self.filter.is_empty() || self.filter.contains(&kind)
    }
}

fn parse_filter(names: &str) -> Result<Vec<EventKind>, UsageError> {
    names
        .split(',')
        .map(|name| {
            EventKind::from_name(name).ok_or_else(|| {
                UsageError(format!(
                    "--event-handler: unknown event {name:?} in the filter (this agent \
                     fires member-join, member-leave, member-failed, member-update; \
                     no user events or queries)"
                ))
            })
        })
        .collect()
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// The queue in front of the handler thread.
pub struct Dispatcher {
    queue: Option<mpsc::Sender<Event>>,
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Dispatcher {
    /// Starts the handler thread (none when there are no handlers).
    pub fn start(specs: Vec<HandlerSpec>, local: &NodeId, timeout: Duration) -> Dispatcher {
        let stopping = Arc::new(AtomicBool::new(false));
        if specs.is_empty() {
            return Dispatcher {
                queue: None,
                stopping,
                thread: None,
            };
        }
        let (queue, events) = mpsc::channel::<Event>();
        let runner = Runner {
            specs,
            environment: self_environment(local),
            timeout,
        };
        let stop_flag = Arc::clone(&stopping);
        let thread = thread::spawn(move || {
            for event in events {
                if stop_flag.load(Ordering::SeqCst) {
                    break;
                }
                runner.run_all(&event);
            }
        });
        Dispatcher {
            queue: Some(queue),
            stopping,
            thread: Some(thread),
        }
    }

    pub fn dispatch(&self, event: Event) {
        if let Some(queue) = &self.queue {
            // The thread only ends after `stop`, so a send cannot fail before it.
            let _ = queue.send(event);
        }
    }

    /// Drops the events still queued and waits for the running handler (at most its
    /// timeout).
    pub fn stop(mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.queue = None;
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the event handler thread panicked");
        }
    }
}

/// `SERF_SELF_NAME`, `SERF_SELF_ROLE` and one `SERF_TAG_<KEY>` per local tag.
fn self_environment(local: &NodeId) -> Vec<(String, String)> {
    let mut environment = vec![
        ("SERF_SELF_NAME".to_string(), local.name.clone()),
        ("SERF_SELF_ROLE".to_string(), local.role().to_string()),
    ];
    for (key, value) in &local.tags {
        environment.push((format!("SERF_TAG_{}", key.to_uppercase()), value.clone()));
    }
    environment
}

struct Runner {
    specs: Vec<HandlerSpec>,
    environment: Vec<(String, String)>,
    timeout: Duration,
}

impl Runner {
    fn run_all(&self, event: &Event) {
        for spec in self.specs.iter().filter(|spec| spec.wants(event.kind)) {
            self.run(spec, event);
        }
    }

    fn run(&self, spec: &HandlerSpec, event: &Event) {
        let mut child = match Command::new("/bin/sh")
            .arg("-c")
            .arg(&spec.program)
            .env("SERF_EVENT", event.kind.name())
            .envs(self.environment.iter().map(|(key, value)| (key, value)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
        {
            Ok(child) => child,
            Err(error) => {
                tracing::error!(
                    "handler {}: cannot start {:?}: {error}",
                    event.kind,
                    spec.program
                );
                return;
            }
        };
        let group = child.id();
        for output in [
            child
                .stdout
                .take()
                .map(|out| Box::new(out) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|err| Box::new(err) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            log_lines(event.kind, output);
        }
        let (done, finished) = mpsc::channel();
        let input = event.stdin_lines();
        thread::spawn(move || {
            let _ = done.send(feed_and_wait(&mut child, &input));
        });
        let status = match finished.recv_timeout(self.timeout) {
            Ok(status) => status,
            Err(RecvTimeoutError::Timeout) => {
                tracing::warn!(
                    "handler {}: {:?} still running after {:?}, killing it",
                    event.kind,
                    spec.program,
                    self.timeout
                );
                kill_group(group);
                finished
                    .recv()
                    .unwrap_or_else(|_| Err(std::io::Error::other("waiter lost")))
            }
            Err(RecvTimeoutError::Disconnected) => Err(std::io::Error::other("waiter lost")),
        };
        match status {
            Ok(status) if status.success() => {}
            Ok(status) => tracing::warn!("handler {}: {:?} {status}", event.kind, spec.program),
            Err(error) => tracing::error!(
                "handler {}: waiting for {:?}: {error}",
                event.kind,
                spec.program
            ),
        }
    }
}

/// Writes the member lines (a handler that does not read them just gets EPIPE) and
/// reaps the handler.
fn feed_and_wait(child: &mut Child, input: &str) -> std::io::Result<ExitStatus> {
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes());
    }
    child.wait()
}

fn kill_group(group: u32) {
    if let Ok(group) = i32::try_from(group) {
        // SAFETY: kill(2) with a negative pid signals that process group; no memory is
        // involved. The group is the handler's own (process_group(0)), not yet reaped.
        unsafe {
            libc::kill(-group, libc::SIGKILL);
        }
    }
}

/// Logs each line of a handler's output with the event as prefix, on a thread that ends
/// with the output (not joined: a handler's background child may keep it open).
fn log_lines(kind: EventKind, output: Box<dyn Read + Send>) {
    thread::spawn(move || {
        for line in BufReader::new(output).split(b'\n').map_while(Result::ok) {
            tracing::info!("handler {kind}: {}", String::from_utf8_lossy(&line));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_is_a_list_of_event_names() {
        let spec = HandlerSpec::parse("member-leave,member-failed=cat").unwrap();
        assert_eq!(spec.filter, [EventKind::Leave, EventKind::Failed]);
        assert_eq!(spec.program, "cat");
        assert!(spec.wants(EventKind::Failed) && !spec.wants(EventKind::Join));
    }

    #[test]
    fn no_filter_means_every_event_and_keeps_equals_signs() {
        let spec = HandlerSpec::parse("LANG=C cat").unwrap();
        assert!(spec.filter.is_empty());
        assert_eq!(spec.program, "LANG=C cat");
        assert!(EventKind::ALL.into_iter().all(|kind| spec.wants(kind)));
    }

    #[test]
    fn unknown_events_and_missing_programs_are_refused() {
        assert!(HandlerSpec::parse("user:deploy=cat").is_err());
        assert!(HandlerSpec::parse("member-join=").is_err());
        assert!(HandlerSpec::parse("/nonexistent/handler.sh").is_err());
        assert!(HandlerSpec::parse("member-join=/etc/passwd").is_err());
    }
}
