//! The chaos soak: 20 services, each with a logger, each writing numbered lines and
//! forking short-lived children (some double-forking, so that pidvisor adopts and reaps
//! them), while random signals (TERM, KILL, HUP, INT, STOP then CONT) hit random services,
//! their children and their loggers, 50 times a second.
//!
//! It checks correctness, never timing: no zombie of pidvisor's lives longer than a
//! few seconds at any sample, every line a service wrote reached its logger exactly once,
//! whole and in order, every service comes back up, and pidvisor exits 0 at the end.
//! It reports pidvisor's RSS at the start and the end and its CPU time over the soak.
//!
//! 60 seconds under `cargo test`; the long form is
//! `PIDVISOR_SOAK_SECS=600 cargo test --test faults soak -- --nocapture`
//! (`PIDVISOR_SOAK_SEED=N` replays one run's choice of targets and signals).
//!
//! Loggers get every signal but KILL: a logger killed between its `read` and its `write`
//! loses what it read, which no supervisor can prevent. The logger here finishes the
//! write it is in before it exits on TERM or INT, and ignores HUP.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::time::{Duration, Instant};

use crate::harness::{ProcStat, heavy, proc_stat, processes, python, status_field};
use crate::layout::{Layout, log_count};

const SERVICES: usize = 20;
/// How often a signal is sent.
const SIGNAL_EVERY: Duration = Duration::from_millis(20);
/// A zombie older than this is one pidvisor failed to reap (a loaded machine may keep
/// pidvisor off the CPU for a moment, never this long).
const ZOMBIE_AGE: Duration = Duration::from_secs(5);

const LOGGER: &str = "\
import os, signal, sys
stop = False
def on_stop(signo, frame):
    global stop
    stop = True
signal.signal(signal.SIGTERM, on_stop)
signal.signal(signal.SIGINT, on_stop)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
out = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
while not stop:
    data = os.read(0, 65536)
    if not data:
        break
    while data:
        data = data[os.write(out, data):]
";

fn soak_duration() -> Duration {
    let secs = std::env::var("PIDVISOR_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    Duration::from_secs(secs)
}

/// A small xorshift generator: the soak's choices, replayable from the printed seed.
struct Dice(u64);

impl Dice {
    fn new() -> Dice {
        let seed = std::env::var("PIDVISOR_SOAK_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            })
            | 1;
        println!("soak: seed {seed} (PIDVISOR_SOAK_SEED={seed} replays it)");
        Dice(seed)
    }

    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// What a process in the container is, by its command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Service,
    Logger,
    Child,
}

fn role(pid: i32) -> Option<Role> {
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let text = String::from_utf8_lossy(&cmdline);
    Some(if text.contains("soak_logger.py") {
        Role::Logger
    } else if text.contains("services.d") {
        Role::Service
    } else {
        Role::Child
    })
}

fn layout() -> Layout {
    let layout = Layout::new("soak");
    fs::create_dir(layout.path("tally")).expect("mkdir tally");
    fs::write(layout.path("soak_logger.py"), LOGGER).expect("write logger");
    let tally = layout.quoted("tally");
    let logger = layout.quoted("soak_logger.py");
    for index in 0..SERVICES {
        let name = format!("s{index:02}");
        layout.service_with(
            &name,
            &format!(
                "run=\"$$-$(date +%s%N)\"\n\
                 tally={tally}/$PIDVISOR_SERVICE.$run\n\
                 n=0\n\
                 while :; do\n\
                 echo \"$PIDVISOR_SERVICE $run $n\"\n\
                 echo \"$n\" > \"$tally\"\n\
                 case $((n % 10)) in\n\
                 3) ( sleep 0.2 & ) ;;\n\
                 7) sleep 0.1 & ;;\n\
                 esac\n\
                 n=$((n + 1))\n\
                 sleep 0.02\n\
                 done"
            ),
            "restart-delay = \"10ms\"\nrestart-factor = 1.0\nmax-restarts = 0\n",
        );
        layout.write(
            &name,
            "log/run",
            &format!(
                "#!/bin/sh\nexec {} {logger} {}\n",
                python(),
                layout.quoted(&format!("logged.{name}"))
            ),
            0o755,
        );
    }
    layout
}

/// pidvisor's resident memory (KiB) and CPU time (clock ticks).
fn usage(pid: i32) -> (u64, u64) {
    let rss = status_field(pid, "VmRSS")
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime: fields 14 and 15 of stat, 12 and 13 after the command name.
    (rss, ticks(11) + ticks(12))
}

/// Zombies whose parent is pidvisor, first seen when; those older than [`ZOMBIE_AGE`].
#[derive(Default)]
struct Zombies {
    first_seen: HashMap<(i32, u64), Instant>,
    samples: usize,
    transient: usize,
    worst: usize,
}

impl Zombies {
    fn sample(&mut self, pidvisor: i32, all: &[ProcStat]) {
        let now = Instant::now();
        let seen: Vec<(i32, u64)> = all
            .iter()
            .filter(|p| p.state == 'Z' && p.ppid == pidvisor)
            .map(|p| (p.pid, p.starttime))
            .collect();
        self.first_seen.retain(|key, _| seen.contains(key));
        for key in seen {
            if !self.first_seen.contains_key(&key) {
                self.transient += 1;
                self.first_seen.insert(key, now);
            }
        }
        let old = self
            .first_seen
            .values()
            .filter(|at| now.duration_since(**at) >= ZOMBIE_AGE)
            .count();
        self.samples += 1;
        self.worst = self.worst.max(old);
    }
}

/// What the soak sent, by signal name.
type Sent = BTreeMap<&'static str, usize>;

/// Sends random signals to random processes of the container until `until`, 50 a second
/// however long a look at /proc takes (several per look when it is slow); stopped
/// processes get SIGCONT 50 to 300 ms later. Counts zombies at every look.
fn chaos(pidvisor: i32, until: Instant, zombies: &mut Zombies) -> Sent {
    const SIGNALS: [(libc::c_int, &str); 5] = [
        (libc::SIGTERM, "TERM"),
        (libc::SIGKILL, "KILL"),
        (libc::SIGHUP, "HUP"),
        (libc::SIGINT, "INT"),
        (libc::SIGSTOP, "STOP"),
    ];
    let mut dice = Dice::new();
    let mut sent = Sent::new();
    let mut stopped: Vec<(ProcStat, Instant)> = Vec::new();
    let start = Instant::now();
    let mut count = 0;
    while Instant::now() < until {
        let all = processes();
        let now = Instant::now();
        zombies.sample(pidvisor, &all);
        stopped.retain(|(process, at)| {
            if now < *at {
                return true;
            }
            send(process, libc::SIGCONT);
            false
        });
        let living: Vec<&ProcStat> = descendants(pidvisor, &all)
            .into_iter()
            .filter(|p| p.state != 'Z')
            .collect();
        let due = (now.duration_since(start).as_millis() / SIGNAL_EVERY.as_millis()) as usize;
        while count < due && !living.is_empty() {
            count += 1;
            let target = living[dice.below(living.len())];
            let mut choice = SIGNALS[dice.below(SIGNALS.len())];
            if role(target.pid) == Some(Role::Logger) && choice.0 == libc::SIGKILL {
                choice = (libc::SIGTERM, "TERM");
            }
            if send(target, choice.0) {
                *sent.entry(choice.1).or_default() += 1;
            }
            if choice.0 == libc::SIGSTOP {
                let pause = Duration::from_millis(50 + dice.below(250) as u64);
                stopped.push((target.clone(), now + pause));
            }
        }
        std::thread::sleep(SIGNAL_EVERY);
    }
    for (process, _) in &stopped {
        send(process, libc::SIGCONT);
    }
    for process in descendants(pidvisor, &processes()) {
        send(process, libc::SIGCONT);
    }
    sent
}

/// Every descendant of `root` in the snapshot `all`.
fn descendants(root: i32, all: &[ProcStat]) -> Vec<&ProcStat> {
    let mut found = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for p in all.iter().filter(|p| p.ppid == parent) {
            frontier.push(p.pid);
            found.push(p);
        }
    }
    found
}

/// Sends `signo` to `process` if it is still the process the snapshot saw (not a later
/// one that reuses its pid, which could be anywhere on the host): the signal goes
/// through a pidfd taken before the check. False if it is gone.
fn send(process: &ProcStat, signo: libc::c_int) -> bool {
    // SAFETY: pidfd_open takes a pid and flags; it returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, process.pid, 0) } as libc::c_int;
    if fd < 0 {
        return false;
    }
    let same = proc_stat(process.pid).is_some_and(|now| now.starttime == process.starttime);
    // SAFETY: fd is the pidfd just opened; no siginfo is passed.
    let sent = same
        && unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                fd,
                signo,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        } == 0;
    // SAFETY: fd is ours, closed once.
    unsafe { libc::close(fd) };
    sent
}

/// The lines each service's logger wrote, counted per service.
fn logged_counts(layout: &Layout) -> Vec<usize> {
    (0..SERVICES)
        .map(|i| layout.lines(&format!("logged.s{i:02}")).len())
        .collect()
}

/// What the check of one service's logged lines found.
#[derive(Default, Debug)]
struct Tally {
    lines: usize,
    runs: usize,
    torn: Vec<String>,
    duplicated: Vec<String>,
    lost: Vec<String>,
}

/// Checks `logged.NAME` against what each run of NAME says it wrote (`tally/NAME.RUN`).
fn check_service(layout: &Layout, name: &str) -> Tally {
    let mut tally = Tally::default();
    // Per run: the last number logged.
    let mut last: HashMap<String, i64> = HashMap::new();
    for line in layout.lines(&format!("logged.{name}")) {
        tally.lines += 1;
        let words: Vec<&str> = line.split(' ').collect();
        let parsed = match words.as_slice() {
            [service, run, n] if *service == name => n.parse::<i64>().ok().map(|n| (*run, n)),
            _ => None,
        };
        let Some((run, n)) = parsed else {
            tally.torn.push(line.clone());
            continue;
        };
        let previous = last.entry(run.to_owned()).or_insert(-1);
        if n <= *previous {
            tally.duplicated.push(line.clone());
        } else if n > *previous + 1 {
            tally
                .lost
                .push(format!("{name} {run}: {} to {}", *previous + 1, n - 1));
        }
        *previous = (*previous).max(n);
    }
    tally.runs = last.len();
    let prefix = format!("{name}.");
    for entry in fs::read_dir(layout.path("tally")).expect("read tally") {
        let entry = entry.expect("tally entry");
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(run) = file.strip_prefix(&prefix) else {
            continue;
        };
        let written: i64 = fs::read_to_string(entry.path())
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(-1);
        let logged = last.get(run).copied().unwrap_or(-1);
        if written > logged {
            tally.lost.push(format!(
                "{name} {run}: wrote up to {written}, logged {logged}"
            ));
        }
    }
    tally
}

#[test]
fn chaos_soak_loses_no_line_leaves_no_zombie_and_every_service_comes_back() {
    let _heavy = heavy();
    let duration = soak_duration();
    let layout = layout();
    let mut pidvisor = layout.start();
    let root = pidvisor.host_pid();
    pidvisor.wait_until("every service has logged a line", |_| {
        logged_counts(&layout).iter().all(|&n| n > 0)
    });
    let (rss_start, cpu_start) = usage(root);
    let mut zombies = Zombies::default();
    let sent = chaos(root, Instant::now() + duration, &mut zombies);
    let after_chaos = logged_counts(&layout);
    pidvisor.wait_until("every service and its logger are back up", |_| {
        logged_counts(&layout)
            .iter()
            .zip(&after_chaos)
            .all(|(now, then)| now > then)
    });
    let (rss_end, cpu_end) = usage(root);
    pidvisor.wait_until("no zombie is left", |_| {
        processes()
            .iter()
            .all(|p| !(p.state == 'Z' && p.ppid == root))
    });
    let run = pidvisor.shut_down();
    let tallies: Vec<Tally> = (0..SERVICES)
        .map(|i| check_service(&layout, &format!("s{i:02}")))
        .collect();
    let lines: usize = tallies.iter().map(|t| t.lines).sum();
    let runs: usize = tallies.iter().map(|t| t.runs).sum();
    let torn: Vec<&String> = tallies.iter().flat_map(|t| &t.torn).collect();
    let duplicated: Vec<&String> = tallies.iter().flat_map(|t| &t.duplicated).collect();
    let lost: Vec<&String> = tallies.iter().flat_map(|t| &t.lost).collect();
    // SAFETY: sysconf has no preconditions.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let signals: usize = sent.values().sum();
    println!(
        "soak: {} s, {SERVICES} services with loggers; {signals} signals {sent:?}; \
         {} starts of services and loggers, {runs} service runs logged",
        duration.as_secs(),
        log_count(&run.stderr, ": started (pid"),
    );
    println!(
        "soak: {lines} lines; lost {}, duplicated {}, torn {}",
        lost.len(),
        duplicated.len(),
        torn.len()
    );
    println!(
        "soak: zombies older than {ZOMBIE_AGE:?}: at most {} over {} samples \
         ({} zombies seen and reaped)",
        zombies.worst, zombies.samples, zombies.transient
    );
    println!(
        "soak: pidvisor RSS {rss_start} KiB at the start, {rss_end} KiB at the end; \
         CPU {:.2} s over the soak",
        (cpu_end.saturating_sub(cpu_start)) as f64 / ticks_per_second
    );
    assert!(signals > 0, "the soak sent signals");
    assert_eq!(zombies.worst, 0, "a zombie outlived {ZOMBIE_AGE:?}\n{run}");
    assert!(torn.is_empty(), "torn lines: {torn:?}");
    assert!(duplicated.is_empty(), "duplicated lines: {duplicated:?}");
    assert!(lost.is_empty(), "lost lines: {lost:?}");
    assert!(
        tallies.iter().all(|t| t.runs > 1),
        "every service was restarted at least once: {tallies:?}"
    );
}
