//! Broken services never take the others down: a `run` that is missing, not executable,
//! has a bad shebang, exits at once, or floods its output gets a clear log line and its
//! policy, while a healthy service keeps running (one run, still answering) and so does
//! pidvisor.

use std::io::Write;

use crate::harness::{heavy, mkfifo};
use crate::layout::{Layout, fifo_writer, log_count};

#[test]
fn broken_services_get_a_clear_log_line_and_the_others_keep_running() {
    let _heavy = heavy();
    let layout = Layout::new("isolation");
    let dir = layout.path("services.d");
    layout.write("missing", "service.toml", "", 0o644);
    layout.service_with("waiter", "exec sleep 1000", "after = [\"missing\"]\n");
    layout.write("noexec", "run", "#!/bin/sh\nexec sleep 1000\n", 0o644);
    let give_up_soon = "restart-delay = \"10ms\"\nmax-restarts = 2\n";
    layout.write("shebang", "run", "#!/nonexistent/interpreter\n", 0o755);
    layout.write("shebang", "service.toml", give_up_soon, 0o644);
    layout.service_with("quitter", "exit 1", give_up_soon);
    // 18 MB of lines, then 1 MB without a single newline, then it says so and stays.
    layout.service_with(
        "flood",
        "yes 'flood flood flood' | head -n 1000000\n\
         head -c 1000000 /dev/zero | tr '\\0' x\n\
         echo\necho 'flood done'\nexec sleep 1000",
        "",
    );
    let ping = layout.path("ping");
    mkfifo(&ping);
    let runs = layout.quoted("healthy.runs");
    // It opens the FIFO for reading and writing: never an end of file when a writer closes.
    layout.service(
        "healthy",
        &format!(
            "echo run >> {runs}\nexec 3<> {}\nwhile :; do read word <&3; echo \"pong $word\"; done",
            layout.quoted("ping")
        ),
    );

    let mut pidvisor = layout.start();
    pidvisor.wait_for_log("shebang: FAILED");
    pidvisor.wait_for_log("quitter: FAILED");
    pidvisor.wait_until("the flood has been relayed", |p| {
        p.stdout_so_far().contains("flood | flood done\n")
    });
    // The healthy service still answers, through pidvisor's relay.
    fifo_writer(&mut pidvisor, &ping)
        .write_all(b"still-here\n")
        .expect("ping");
    pidvisor.wait_until("the healthy service answers", |p| {
        p.stdout_so_far().contains("healthy | pong still-here\n")
    });
    assert!(!pidvisor.has_exited());
    let run = pidvisor.shut_down();

    assert_eq!(layout.lines("healthy.runs").len(), 1, "{run}");
    assert_eq!(log_count(&run.stderr, "healthy: started"), 1, "{run}");
    let expected_log = [
        format!("{dir}/missing/run: does not exist"),
        format!("{dir}/waiter/service.toml: after: \"missing\" is left out"),
        format!("{dir}/noexec/run: is not executable"),
        format!(
            "shebang: cannot run '{dir}/shebang/run': its interpreter /nonexistent/interpreter \
             (the #! line) does not exist"
        ),
        "quitter: exited with code 1".to_owned(),
        "4 services: flood, healthy, quitter, shebang".to_owned(),
    ];
    for line in &expected_log {
        assert!(
            run.stderr.contains(line.as_str()),
            "log says {line:?}\n{run}"
        );
    }
    // Flooded or not, every line came out whole, prefixed and in order; the endless
    // line in pieces of 16 KiB.
    let healthy: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("healthy | "))
        .collect();
    assert_eq!(
        healthy,
        ["healthy | pong still-here"],
        "stderr:\n{}",
        run.stderr
    );
    let mut expected = vec!["flood flood flood".to_owned(); 1_000_000];
    expected.extend(vec!["x".repeat(16_384); 61]);
    expected.push("x".repeat(1_000_000 - 61 * 16_384));
    expected.push("flood done".to_owned());
    let flood: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| !l.starts_with("healthy | "))
        .map(|l| l.strip_prefix("flood | ").unwrap_or("(no prefix)"))
        .collect();
    let first_difference = (0..flood.len().max(expected.len()))
        .find(|&i| flood.get(i).copied() != expected.get(i).map(String::as_str));
    if let Some(at) = first_difference {
        // Too long to print: kept in the temp dir, which a failing test keeps.
        std::fs::write(layout.path("stdout.txt"), &run.stdout).expect("writing stdout.txt");
        let show = |line: Option<&str>| line.map(|l| format!("{} bytes: {:.60}", l.len(), l));
        panic!(
            "flood line {at}: {:?}, expected {:?}; {} lines\nstderr:\n{}",
            show(flood.get(at).copied()),
            show(expected.get(at).map(String::as_str)),
            flood.len(),
            run.stderr
        );
    }
}

/// pidvisor holds a few pipes per service, so a low soft limit on open files (containerd
/// 2 gives 1024) would stop it from starting a few hundred services. It raises its own
/// soft limit to the hard one, and its services get the limit it was started with.
#[test]
fn more_services_than_the_soft_open_files_limit_allows_all_start_and_keep_that_limit() {
    let _heavy = heavy();
    let layout = Layout::new("open-files");
    let limits = layout.quoted("limit");
    for index in 0..100 {
        layout.service(
            &format!("s{index:03}"),
            &format!("ulimit -Sn >> {limits}\nexec sleep 1000"),
        );
    }
    let mut pidvisor = layout.launch(&[]).open_files_limit(64).start();
    let seen = layout.wait_for_lines(&mut pidvisor, "limit", 100);
    assert!(
        seen.iter().all(|line| line == "64"),
        "every service has the soft limit pidvisor was started with: {seen:?}"
    );
    let run = pidvisor.shut_down();
    run.assert_code(0);
    assert_eq!(log_count(&run.stderr, ": started (pid"), 100, "{run}");
}

/// Services start side by side (every `run` of a boot slice is forked before the first
/// `exec` is waited for): a `run` that cannot be exec'd among them is still reported as
/// it would be alone (the message, a `spawn_failed` event, no `started` one, and its
/// child never counted as an orphan), and every other service of the slice starts.
#[test]
fn an_exec_failure_among_services_started_together_is_reported_as_alone() {
    let layout = Layout::new("exec-failure-in-slice");
    let dir = layout.path("services.d");
    let never = "restart = \"never\"\n";
    for name in ["a", "b", "d", "e"] {
        layout.service(name, "exec sleep 1000");
    }
    layout.write("c", "run", "#!/nonexistent/interpreter\n", 0o755);
    layout.write("c", "service.toml", never, 0o644);
    let events_file = layout.path("events.json");
    let mut pidvisor = layout.launch(&["--events-file", &events_file]).start();
    pidvisor.wait_until("every service has started or failed", |p| {
        let log = p.stderr_so_far();
        ["a", "b", "d", "e"]
            .iter()
            .all(|name| log.contains(&format!("{name}: started (pid ")))
            && log.contains("c: cannot run")
    });
    let run = pidvisor.shut_down();
    assert!(
        run.stderr.contains(&format!(
            "c: cannot run '{dir}/c/run': its interpreter /nonexistent/interpreter \
             (the #! line) does not exist"
        )),
        "{run}"
    );
    let events = std::fs::read_to_string(&events_file).expect("events");
    let of_c: Vec<&str> = events
        .lines()
        .filter(|line| line.contains("\"service\":\"c\""))
        .collect();
    assert!(
        of_c.iter().any(
            |line| line.contains("\"event\":\"spawn_failed\"") && line.contains("\"code\":127")
        ),
        "{events}"
    );
    assert!(
        !of_c
            .iter()
            .any(|line| line.contains("\"event\":\"started\"")),
        "{events}"
    );
    assert!(!events.contains("orphans_reaped"), "{events}");
}

/// More services than a start slice has descriptor slots (32), started together: each
/// `run` shares pidvisor's descriptor table until its first act, or copies it where no
/// slot is free, and either way gets only its stdin, stdout and stderr, its notification
/// descriptor, and what pidvisor itself inherited, at the numbers meant.
#[test]
fn services_started_together_get_only_their_own_and_the_inherited_descriptors() {
    const SERVICES: usize = 34;
    let layout = Layout::new("fds-of-services");
    let inherited = layout.path("socket-activation-stand-in");
    let file = std::fs::File::create(&inherited).expect("create file");
    let body = format!(
        "exec {} -c {}",
        crate::harness::python(),
        crate::harness::sh_quote(crate::harness::LIST_FDS)
    );
    for index in 0..SERVICES {
        let name = format!("s{index:02}");
        layout.service_with(&name, &body, "restart = \"never\"\n");
    }
    // A notification descriptor at a low number, where pidvisor's slots are.
    layout.write("s00", "notification-fd", "3\n", 0o644);
    let mut pidvisor = layout.launch(&[]).pass_fd(file, 5).start();
    pidvisor.wait_until("every service has listed its descriptors", |p| {
        let out = p.stdout_so_far();
        (0..SERVICES).all(|index| out.contains(&format!("s{index:02} | 2 ")))
    });
    let run = pidvisor.shut_down();
    for index in 0..SERVICES {
        let prefix = format!("s{index:02} | ");
        let fds = crate::harness::listed_fds(
            run.stdout
                .lines()
                .filter_map(|line| line.strip_prefix(&prefix)),
        );
        let numbers: Vec<i32> = fds.keys().copied().collect();
        let expected: &[i32] = if index == 0 {
            &[0, 1, 2, 3, 5]
        } else {
            &[0, 1, 2, 5]
        };
        assert_eq!(numbers, expected, "{prefix}\n{run}");
        let target = |fd: i32| fds.get(&fd).expect("listed");
        assert_eq!(target(0), "/dev/null", "{prefix}{run}");
        assert!(target(1).starts_with("pipe:"), "{prefix}{run}");
        assert!(target(2).starts_with("pipe:"), "{prefix}{run}");
        assert_ne!(target(1), target(2), "{prefix}{run}");
        assert_eq!(target(5), &inherited, "{prefix}{run}");
        if index == 0 {
            assert!(target(3).starts_with("pipe:"), "{prefix}{run}");
        }
    }
}

/// The descriptor slots are taken for as many starts as the services could make at once
/// (a `run` and a `log/run` each), not for a whole start slice: a container with one
/// service holds two groups of five slots, where it held 160 `/dev/null` descriptors,
/// which pidvisor filled and listed and every child unshared at its start.
#[test]
fn one_service_takes_descriptor_slots_for_its_own_starts_only() {
    let layout = Layout::new("fds-of-one-service");
    layout.service("only", "echo started\nexec sleep 1000");
    let mut pidvisor = layout.start();
    pidvisor.wait_until("the service has started", |p| {
        p.stdout_so_far().contains("only | started")
    });
    let held = crate::harness::fd_targets(pidvisor.host_pid());
    let null = held.iter().filter(|target| *target == "/dev/null").count();
    // 2 groups of 5 slots, the `/dev/null` spawns keep, and stdin if it is /dev/null.
    assert!(
        null <= 12,
        "pidvisor holds {null} /dev/null descriptors: {held:?}"
    );
    let run = pidvisor.shut_down();
    assert!(run.stdout.contains("only | started"), "{run}");
}

// Children share pidvisor's memory, on stacks of their own, on x86_64 (see
// src/init/spawn/fork.rs), and the system call numbers below are x86_64's.
#[cfg(target_arch = "x86_64")]
#[test]
fn the_stacks_of_the_boots_starts_are_given_back_before_pidvisor_sleeps() {
    // A child starts on a stack of its own in pidvisor's memory, with an inaccessible
    // guard page below it; the stacks of a boot's starts are kept for the next slice of
    // starts, and must be gone once pidvisor sleeps: with 40 services (two slices of
    // starts), as many inaccessible mappings as with one.
    assert_eq!(
        guard_mappings_once_asleep(40),
        guard_mappings_once_asleep(1)
    );
}

/// pidvisor's inaccessible (`---p`) mappings once it has started `services` services and
/// sleeps (in `epoll_wait`, state S).
#[cfg(target_arch = "x86_64")]
fn guard_mappings_once_asleep(services: usize) -> usize {
    let layout = Layout::new(&format!("stacks-{services}"));
    for index in 0..services {
        layout.service(&format!("s{index:02}"), "echo started\nexec sleep 1000");
    }
    let mut pidvisor = layout.start();
    pidvisor.wait_until("every service has started", |p| {
        p.stdout_so_far().matches(" | started").count() == services
    });
    let pid = pidvisor.host_pid();
    crate::harness::wait_until(crate::harness::PATIENCE, "pidvisor sleeps", || {
        sleeps_in_epoll_wait(pid)
    });
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).expect("maps");
    let guards = maps
        .lines()
        .filter(|line| line.split_whitespace().nth(1) == Some("---p"))
        .count();
    pidvisor.shut_down().assert_code(0);
    guards
}

/// Whether `pid` is asleep in `epoll_wait` or `epoll_pwait` (x86_64 numbers 232, 281).
#[cfg(target_arch = "x86_64")]
fn sleeps_in_epoll_wait(pid: i32) -> bool {
    let asleep = crate::harness::proc_stat(pid).is_some_and(|stat| stat.state == 'S');
    let call = std::fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap_or_default();
    let number = call.split_whitespace().next().unwrap_or_default();
    asleep && matches!(number, "232" | "281")
}
