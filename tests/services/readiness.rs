//! Readiness: a service that comes `after` another starts only once that one is ready, by
//! each kind of check (`notify-fd`, an s6 `notification-fd` file, `tcp`, `command`); a
//! service not ready within `ready-timeout` is stopped and its restart policy applies; a
//! `notify-fd` whose number pidvisor or its spawn happens to use still works.
//!
//! Each checked service waits on a FIFO of its own until the test writes to it, then logs
//! `KIND ready` to the `events` file just before it becomes ready; its dependent logs
//! `KIND-dep start` as it starts. The dependent must not start before the FIFO is written,
//! and its line must come after the one it waits for.

use std::io::Write;
use std::net::TcpListener;

use crate::harness::{descendants_of, mkfifo, python, sh_quote};
use crate::layout::{Layout, fifo_writer, log_count};

/// A port nobody listens on (as far as anyone can know).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

#[test]
fn dependents_start_only_once_each_kind_of_readiness_is_reached() {
    let layout = Layout::new("readiness");
    let events = layout.quoted("events");
    let port = free_port();
    let listen = format!(
        "import socket, time\n\
         open({events}, 'a').write('tcp ready\\n')\n\
         s = socket.socket()\n\
         s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         s.bind(('127.0.0.1', {port}))\n\
         s.listen()\n\
         time.sleep(1000)\n"
    );
    // (kind, how it becomes ready once the FIFO is written, its service.toml)
    let kinds = [
        (
            "notify",
            "echo 'notify ready' >> EVENTS\necho >&3\nexec sleep 1000".to_owned(),
            "ready = { notify-fd = 3 }\n".to_owned(),
        ),
        (
            "s6fd",
            "echo 's6fd ready' >> EVENTS\necho >&5\nexec sleep 1000".to_owned(),
            String::new(),
        ),
        (
            "tcp",
            format!("exec {} -c {}", python(), sh_quote(&listen)),
            format!("ready = {{ tcp = \"127.0.0.1:{port}\" }}\n"),
        ),
        (
            "cmd",
            "echo 'cmd ready' >> EVENTS\ntouch flag\nexec sleep 1000".to_owned(),
            "ready = { command = \"test -e flag\" }\n".to_owned(),
        ),
    ];
    for (kind, becomes_ready, toml) in &kinds {
        mkfifo(&layout.path(&format!("{kind}.go")));
        let body = format!(
            "read go < {}\n{}",
            layout.quoted(&format!("{kind}.go")),
            becomes_ready.replace("EVENTS", &events)
        );
        layout.service_with(kind, &body, toml);
        layout.service_with(
            &format!("{kind}-dep"),
            &format!("echo '{kind}-dep start' >> {events}\nexec sleep 1000"),
            &format!("after = [\"{kind}\"]\n"),
        );
    }
    layout.write("s6fd", "notification-fd", "5\n", 0o644);

    let mut pidvisor = layout.start();
    for (kind, _, _) in &kinds {
        let dep_started = format!("{kind}-dep start");
        // The service waits on its FIFO (it has opened it): it cannot be ready yet.
        let fifo = layout.path(&format!("{kind}.go"));
        let mut go = fifo_writer(&mut pidvisor, &fifo);
        assert!(
            !layout.lines("events").contains(&dep_started),
            "{kind}-dep started before {kind} was ready\n{}",
            pidvisor.stderr_so_far()
        );
        go.write_all(b"go\n").expect("writing the FIFO");
        pidvisor.wait_until(&format!("{kind}-dep has started"), |_| {
            layout.lines("events").contains(&dep_started)
        });
        pidvisor.wait_for_log(&format!("{kind}: ready"));
    }
    let run = pidvisor.shut_down();
    let events = layout.lines("events");
    for (kind, _, _) in &kinds {
        let position = |line: String| events.iter().position(|e| *e == line);
        let ready = position(format!("{kind} ready"));
        let dep = position(format!("{kind}-dep start"));
        assert!(
            ready.is_some() && dep > ready,
            "{kind}: events {events:?}\n{run}"
        );
    }
}

#[test]
fn a_service_not_ready_within_its_timeout_is_stopped_and_its_policy_applies() {
    let layout = Layout::new("ready-timeout");
    let port = free_port();
    let kinds = [
        ("silent", "ready = { notify-fd = 3 }".to_owned()),
        (
            "closed",
            format!("ready = {{ tcp = \"127.0.0.1:{port}\" }}"),
        ),
        ("unwell", "ready = { command = \"false\" }".to_owned()),
    ];
    for (name, ready) in &kinds {
        let stopped = layout.quoted(&format!("{name}.stopped"));
        layout.service_with(
            name,
            &format!("trap 'touch {stopped}; exit 0' TERM\nsleep 1000 & wait"),
            // 2 s: time for a loaded machine to run the `trap` line before the stop.
            &format!("{ready}\nready-timeout = \"2s\"\nrestart = \"never\"\n"),
        );
        layout.service_with(
            &format!("{name}-dep"),
            "exec sleep 1000",
            &format!("after = [\"{name}\"]\n"),
        );
    }
    let mut pidvisor = layout.start();
    for (name, _) in &kinds {
        pidvisor.wait_for_log(&format!("{name}: not restarted (restart policy)"));
    }
    let run = pidvisor.shut_down();
    for (name, _) in &kinds {
        assert!(
            run.stderr
                .contains(&format!("{name}: not ready within 2s: stopping it")),
            "{run}"
        );
        assert!(
            std::path::Path::new(&layout.path(&format!("{name}.stopped"))).exists(),
            "{name} got its stop signal\n{run}"
        );
        assert_eq!(
            log_count(&run.stderr, &format!("{name}-dep: started")),
            0,
            "{run}"
        );
    }
}

#[test]
fn a_readiness_command_still_running_when_its_service_ends_is_killed() {
    let layout = Layout::new("hung-probe");
    layout.service_with(
        "hopeful",
        "exec sleep 1000",
        "ready = { command = \"exec sleep 1001\" }\nready-timeout = \"300ms\"\n\
         restart = \"never\"\n",
    );
    let mut pidvisor = layout.start();
    pidvisor.wait_for_log("hopeful: not restarted (restart policy)");
    let pid1 = pidvisor.host_pid();
    pidvisor.wait_until("the readiness command is gone", |_| {
        descendants_of(pid1).is_empty()
    });
    pidvisor.shut_down();
}

/// The notification descriptors the collision tests try: enough to cover every number
/// pidvisor's own descriptors take with these services (the signalfd, epoll, the control
/// socket, each service's output pipes and notification pipe) and the descriptor its
/// spawn reports a failed `exec` through.
const NOTIFY_FDS: std::ops::RangeInclusive<i32> = 3..=40;

#[test]
fn a_notify_fd_that_collides_with_one_of_pidvisors_descriptors_still_reaches_run() {
    let layout = Layout::new("notify-collisions");
    for fd in NOTIFY_FDS {
        layout.service_with(
            &format!("fd{fd}"),
            // Through /proc: sh redirects only descriptors 0 to 9.
            &format!("echo > /proc/self/fd/{fd}\nexec sleep 1000"),
            &format!("ready = {{ notify-fd = {fd} }}\nready-timeout = \"20s\"\n"),
        );
    }
    let mut pidvisor = layout.start();
    for fd in NOTIFY_FDS {
        pidvisor.wait_for_log(&format!("fd{fd}: ready"));
    }
    let run = pidvisor.shut_down();
    assert_eq!(log_count(&run.stderr, "not ready within"), 0, "{run}");
}

#[test]
fn a_notify_fd_that_collides_with_spawns_error_pipe_still_reports_a_failed_exec() {
    // Where the spawn's error pipe lands depends on how many descriptors pidvisor holds,
    // so each number gets a pidvisor of its own with one service.
    for fd in 3..=24 {
        let layout = Layout::new(&format!("notify-exec-fails-{fd}"));
        // An interpreter that does not exist: exec fails with ENOENT.
        layout.write("svc", "run", "#!/nonexistent/sh\n", 0o755);
        layout.write(
            "svc",
            "service.toml",
            &format!("ready = {{ notify-fd = {fd} }}\nrestart = \"never\"\n"),
            0o644,
        );
        let mut pidvisor = layout.start();
        pidvisor.wait_for_log("svc: not restarted");
        let run = pidvisor.shut_down();
        assert_eq!(
            log_count(&run.stderr, "svc: started"),
            0,
            "notify-fd {fd}\n{run}"
        );
        assert_eq!(
            log_count(&run.stderr, "svc: cannot run"),
            1,
            "notify-fd {fd}\n{run}"
        );
    }
}
