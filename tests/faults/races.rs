//! Start-up races: SIGTERM while a `cont-init.d` script runs and while services are
//! starting (Horust #58 hung there), a child that predates pidvisor (started by whoever
//! exec'd it), and a stale control socket left by an earlier run in a persisted `/run`.

use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::ctl::ctl_ok;
use crate::harness::{PATIENCE, PIDVISOR, as_pid_one, children_of, poll_until};
use crate::layout::{Layout, log_count};

#[test]
fn sigterm_while_an_init_script_runs_ends_it_and_starts_nothing() {
    let layout = Layout::new("term-during-init");
    let up = layout.quoted("init.up");
    layout.script_in(
        "cont-init.d",
        "10-slow",
        &format!("echo up > {up}\nexec sleep 1000"),
    );
    layout.script_in(
        "cont-init.d",
        "20-never",
        &format!("echo ran >> {}", layout.quoted("never")),
    );
    layout.service(
        "web",
        &format!("echo run >> {}\nexec sleep 1000", layout.quoted("web.runs")),
    );
    let mut pidvisor = layout.start();
    pidvisor.wait_for_file(&layout.path("init.up"));
    pidvisor.signal(libc::SIGTERM);
    let run = pidvisor.finish(PATIENCE);
    run.assert_code(0);
    assert!(
        layout.lines("never").is_empty(),
        "no later init script ran: {run}"
    );
    assert!(
        layout.lines("web.runs").is_empty(),
        "no service started: {run}"
    );
}

#[test]
fn sigterm_while_services_are_starting_stops_them_all_and_starts_none_after() {
    for after_starts in [1, 5, 10, 20] {
        let layout = Layout::new("term-while-starting");
        for index in 0..20 {
            // Never ready: each stays `starting`, and later ones wait for earlier ones.
            let after = if index % 2 == 1 {
                format!("after = [\"s{:02}\"]\n", index - 1)
            } else {
                String::new()
            };
            layout.service_with(
                &format!("s{index:02}"),
                "exec sleep 1000",
                &format!("{after}ready = {{ command = \"false\" }}\n"),
            );
        }
        let mut pidvisor = layout.start();
        pidvisor.wait_until(&format!("{after_starts} services have started"), |p| {
            log_count(&p.stderr_so_far(), ": started (pid") >= after_starts.min(10)
        });
        pidvisor.signal(libc::SIGTERM);
        let run = pidvisor.finish(PATIENCE);
        run.assert_code(0);
        let stderr = &run.stderr;
        let shutdown = stderr
            .find("SIGTERM: shutting down")
            .expect("the shutdown is logged");
        assert_eq!(
            log_count(&stderr[shutdown..], ": started (pid"),
            0,
            "nothing started once the shutdown had begun: {run}"
        );
        assert_eq!(
            log_count(stderr, ": started (pid"),
            log_count(stderr, ": stopped ("),
            "every service that started was stopped: {run}"
        );
    }
}

#[test]
fn a_child_that_predates_pidvisor_is_reaped_and_never_taken_for_the_main_command() {
    let dir = crate::harness::TempDir::new("predating-child");
    // Whoever execs pidvisor has two children already: one that has exited (a zombie
    // when pidvisor starts) and one that exits with 42 when told to.
    let script = format!(
        "import os, sys\n\
         zombie = os.fork()\n\
         if zombie == 0:\n    os._exit(41)\n\
         while ') Z ' not in open('/proc/%d/stat' % zombie).read():\n    pass\n\
         if os.fork() == 0:\n\
         \x20   while not os.path.exists({pre:?}):\n        os.sched_yield()\n\
         \x20   os._exit(42)\n\
         os.execv({pidvisor:?}, [{pidvisor:?}, '--', 'sh', '-c', \
         'echo $$ > {main}; while [ ! -e {go} ]; do sleep 0.01; done; exit 7'])\n",
        pre = dir.file("pre.go"),
        go = dir.file("main.go"),
        main = dir.file("main.pid"),
        pidvisor = PIDVISOR,
    );
    let mut words = as_pid_one(crate::harness::python());
    words.extend(["-c".to_owned(), script]);
    let mut child = Command::new(&words[0])
        .args(&words[1..])
        .env("PIDVISOR_SOCKET", dir.path().join("control.sock"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("unshare");
    let unshare = child.id() as i32;
    let mut pidvisor = 0;
    poll_until(PATIENCE, "the main command has started", || {
        pidvisor = children_of(unshare).first().map_or(0, |p| p.pid);
        match Path::new(&dir.file("main.pid")).exists() {
            true => Ok(()),
            false => Err(String::new()),
        }
    });
    poll_until(
        PATIENCE,
        "the zombie that predates pidvisor is reaped",
        || {
            let zombies: Vec<_> = children_of(pidvisor)
                .into_iter()
                .filter(|p| p.state == 'Z')
                .collect();
            match zombies.is_empty() {
                true => Ok(()),
                false => Err(format!("{zombies:?}")),
            }
        },
    );
    std::fs::write(dir.file("pre.go"), "").expect("pre.go");
    poll_until(PATIENCE, "both early children are reaped", || {
        let children = children_of(pidvisor);
        match children.len() {
            1 => Ok(()),
            _ => Err(format!("{children:?}")),
        }
    });
    std::fs::write(dir.file("main.go"), "").expect("main.go");
    let mut status = None;
    poll_until(PATIENCE, "pidvisor has exited", || {
        status = child.try_wait().expect("try_wait");
        status.map(|_| ()).ok_or_else(String::new)
    });
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("stderr");
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(7),
        "the main command's code, not 41 or 42: {stderr}"
    );
}

#[test]
fn a_stale_control_socket_from_an_earlier_run_is_taken_over() {
    let layout = Layout::new("stale-socket");
    layout.service("web", "exec sleep 1000");
    // An earlier run's socket: bound, then its process gone (the file stays).
    drop(UnixListener::bind(layout.path("control.sock")).expect("bind"));
    std::fs::write(layout.path("events.json"), "{\"stale\": true}\n").expect("events");
    let mut pidvisor = layout
        .launch(&["--events-file", &layout.path("events.json")])
        .start();
    pidvisor.wait_for_log("web: started");
    let status = ctl_ok(&layout.dir, &["status", "web"]);
    assert!(status.contains("web"), "{status}");
    let events = std::fs::read_to_string(layout.path("events.json")).expect("events");
    assert!(
        !events.contains("stale"),
        "the events file starts afresh: {events}"
    );
    pidvisor.shut_down();
    assert!(
        !Path::new(&layout.path("control.sock")).exists(),
        "the socket is removed at exit"
    );
}
