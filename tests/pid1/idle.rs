//! Idle means asleep: with nothing happening, pidvisor (as PID 1) sits in `epoll_wait`
//! with no timeout and is not woken at all: its context-switch counters do not move over
//! a 5-second window. (Start-up's last act is one wait of 100 ms, once: see
//! `src/init/resident.rs`.) A service that has printed and exited for good is part of
//! the idle picture: nothing holds its output pipe's write end any more, and the pipe's
//! hang-up must not wake pidvisor.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::thread;
use std::time::Duration;

use crate::harness::{Launch, PATIENCE, TempDir, proc_stat, status_field};

/// x86_64 system call numbers of the epoll waits.
const EPOLL_WAIT: u64 = 232;
const EPOLL_PWAIT: u64 = 281;
const EPOLL_PWAIT2: u64 = 441;

/// `Some(true)` when `pid` is blocked in an epoll wait without a timeout, `Some(false)`
/// when it is blocked in one with a timeout, `None` when it is elsewhere. From
/// `/proc/<pid>/syscall`: the number and arguments of the system call it is blocked in.
fn in_epoll_wait_without_timeout(pid: i32) -> Option<bool> {
    let text = fs::read_to_string(format!("/proc/{pid}/syscall")).ok()?;
    let words: Vec<u64> = text
        .split_whitespace()
        .map(|w| {
            u64::from_str_radix(
                w.trim_start_matches("0x"),
                if w.starts_with("0x") { 16 } else { 10 },
            )
        })
        .collect::<Result<_, _>>()
        .ok()?;
    let (&number, args) = words.split_first()?;
    let timeout = *args.get(3)?;
    match number {
        // int timeout: -1 waits forever.
        EPOLL_WAIT | EPOLL_PWAIT => Some(timeout as u32 as i32 == -1),
        // struct timespec *timeout: NULL waits forever.
        EPOLL_PWAIT2 => Some(timeout == 0),
        _ => None,
    }
}

fn context_switches(pid: i32) -> (u64, u64) {
    let read = |field| {
        status_field(pid, field)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{field} of pid {pid}"))
    };
    (
        read("voluntary_ctxt_switches"),
        read("nonvoluntary_ctxt_switches"),
    )
}

#[test]
fn idle_pidvisor_sleeps_in_epoll_wait_without_any_wake_up() {
    let dir = TempDir::new("idle");
    let services = dir.path().join("services.d");
    fs::create_dir_all(services.join("done")).expect("service folder");
    fs::write(
        services.join("done/run"),
        "#!/bin/sh\necho finished its work\n",
    )
    .expect("run");
    fs::set_permissions(services.join("done/run"), fs::Permissions::from_mode(0o755))
        .expect("chmod");
    fs::write(services.join("done/service.toml"), "restart = \"never\"\n").expect("toml");
    let services = services.to_string_lossy();
    let mut pidvisor =
        Launch::pid1(&dir, &["--services-dir", &services, "--", "sleep", "1000"]).start();
    let pid = pidvisor.host_pid();
    // The service first: until it has exited, it is a child that leads its own process
    // group too, which `main_pid` would take for the main command.
    pidvisor.wait_until("the service has printed and exited", |p| {
        p.stdout_so_far().contains("done | finished its work")
            && crate::harness::children_of(pid)
                .iter()
                .all(|child| child.comm == "sleep")
    });
    let main = pidvisor.main_pid();
    pidvisor.wait_until("the main command is sleep", |_| {
        proc_stat(main).is_some_and(|p| p.comm == "sleep")
    });
    // Start-up ends with one wait of 100 ms (the loop's first quiet moment, after which
    // start-up's pages are given back); every wait after it is without a timeout.
    pidvisor.wait_until(
        "pidvisor is blocked in epoll_wait without a timeout",
        |_| in_epoll_wait_without_timeout(pid) == Some(true),
    );

    let before = context_switches(pid);
    // The measurement window: the one fixed sleep of the suite, since the point is that
    // nothing happens during it.
    thread::sleep(Duration::from_secs(5));
    let after = context_switches(pid);
    assert_eq!(
        after, before,
        "(voluntary, nonvoluntary) context switches of an idle pidvisor"
    );

    pidvisor.signal(libc::SIGTERM);
    pidvisor.finish(PATIENCE).assert_code(143);
}
