//! Service output: every line reaches pidvisor's stdout whole, prefixed with its service's
//! name, even with two services flooding at once and up to the container's last moment;
//! a `log/run` logger gets every line exactly once, though it and its service are killed
//! in the middle of the stream.

use std::fs;

use crate::harness::{Pidvisor, children_of, fd_targets, heavy, proc_stat};
use crate::layout::{Layout, fifo_writer};

const LINES: usize = 100_000;
const FILLER: &str = "lorem ipsum dolor sit amet, consectetur adipiscing elit";

/// Checks that `stdout` holds exactly lines 1..=count of each writer, prefixed, whole and
/// in order; returns a description of the first problem.
fn check_prefixed_lines(stdout: &str, writers: &[&str], count: usize) -> Result<(), String> {
    let mut next = vec![1usize; writers.len()];
    for (number, line) in stdout.lines().enumerate() {
        let problem = || format!("stdout line {}: {line:?}", number + 1);
        let (prefix, rest) = line.split_once(" | ").ok_or_else(problem)?;
        let writer = writers
            .iter()
            .position(|w| *w == prefix)
            .ok_or_else(problem)?;
        let expected = format!("{prefix} {} {FILLER}", next[writer]);
        if rest != expected {
            return Err(format!("{}, expected {expected:?}", problem()));
        }
        next[writer] += 1;
    }
    for (writer, next) in writers.iter().zip(next) {
        if next != count + 1 {
            return Err(format!("{writer}: {} lines of {count}", next - 1));
        }
    }
    Ok(())
}

#[test]
fn two_services_writing_100k_lines_at_once_get_every_line_whole_and_prefixed() {
    let _heavy = heavy();
    let layout = Layout::new("prefix-flood");
    let writers = ["alpha", "beta"];
    for name in writers {
        // The services print as fast as seq can; they end, and the container with them.
        layout.service_with(
            name,
            &format!("exec seq -f \"$PIDVISOR_SERVICE %g {FILLER}\" 1 {LINES}"),
            "restart = \"never\"\n",
        );
    }
    let mut pidvisor = layout.start();
    for name in writers {
        pidvisor.wait_for_log(&format!("{name}: not restarted"));
    }
    // Whatever is still in the pipes must come out before pidvisor exits.
    let run = pidvisor.shut_down();
    if let Err(problem) = check_prefixed_lines(&run.stdout, &writers, LINES) {
        panic!("{problem}\nstderr:\n{}", run.stderr);
    }
}

#[test]
fn the_last_lines_before_a_critical_exit_reach_stdout() {
    let layout = Layout::new("last-words");
    // Its end ends the container at once: nothing left in the pipe may be lost, nor a
    // last line without a newline.
    layout.service_with(
        "dying",
        &format!("seq -f \"$PIDVISOR_SERVICE %g {FILLER}\" 1 20000\nprintf 'no newline'\nexit 3"),
        "restart = \"never\"\ncritical = true\n",
    );
    let run = layout.launch(&[]).run();
    run.assert_code(3);
    let tail = &run.stdout[run.stdout.len().saturating_sub(80)..];
    let lines = run
        .stdout
        .strip_suffix("dying | no newline\n")
        .unwrap_or_else(|| panic!("the unfinished last line is missing; stdout ends {tail:?}"));
    if let Err(problem) = check_prefixed_lines(lines, &["dying"], 20_000) {
        panic!("{problem}\nstderr:\n{}", run.stderr);
    }
}

#[test]
fn a_line_left_unfinished_by_one_run_is_not_glued_to_the_next_runs_first_line() {
    let layout = Layout::new("unfinished-line");
    let runs = layout.quoted("runs");
    layout.service_with(
        "glue",
        &format!(
            "echo run >> {runs}\n\
             if [ \"$(wc -l < {runs})\" -ge 2 ]; then echo 'next run'; exec sleep 1000; fi\n\
             printf 'unfinished'\nexit 1"
        ),
        "restart-delay = \"10ms\"\n",
    );
    let mut pidvisor = layout.start();
    pidvisor.wait_until("the second run has printed", |p| {
        p.stdout_so_far().contains("next run")
    });
    let run = pidvisor.shut_down();
    assert_eq!(run.stdout, "glue | unfinished\nglue | next run\n", "{run}");
}

/// pidvisor keeps only the read end of each relayed stream's pipe (every run gets a write
/// end of its own): a service's stdout and stderr pipes each appear once among pidvisor's
/// descriptors, so that a child cloned from it has half as many to copy and close; and
/// the output of a run after a restart still arrives on the same pipe.
#[test]
fn pidvisor_holds_one_descriptor_per_relayed_stream_and_restarts_still_relay() {
    let layout = Layout::new("one-end");
    let runs = layout.quoted("runs");
    layout.service_with(
        "twice",
        &format!(
            "echo run >> {runs}\n\
             echo \"out $(wc -l < {runs})\"; echo \"err $(wc -l < {runs})\" >&2\n\
             if [ \"$(wc -l < {runs})\" -ge 2 ]; then exec sleep 1000; fi\nexit 1"
        ),
        "restart-delay = \"10ms\"\n",
    );
    let mut pidvisor = layout.start();
    pidvisor.wait_until("the second run has printed", |p| {
        p.stdout_so_far().contains("twice | out 2") && p.stderr_so_far().contains("twice | err 2")
    });
    let root = pidvisor.host_pid();
    // The second run prints, then execs `sleep`: wait for the exec, not just the lines.
    let service = pidvisor.child_running("sleep");
    let held = fd_targets(root);
    for fd in [1, 2] {
        let pipe = fs::read_link(format!("/proc/{}/fd/{fd}", service.pid))
            .expect("the service's output descriptor")
            .to_string_lossy()
            .into_owned();
        assert!(pipe.starts_with("pipe:"), "descriptor {fd} is {pipe}");
        let ends = held.iter().filter(|target| **target == pipe).count();
        assert_eq!(
            ends, 1,
            "pidvisor's descriptors on {pipe} (the service's {fd}): {held:?}"
        );
    }
    let run = pidvisor.shut_down();
    assert!(
        run.stdout.contains("twice | out 1\ntwice | out 2\n"),
        "{run}"
    );
    assert!(run.stderr.contains("twice | err 1\n"), "{run}");
}

#[test]
fn log_prefix_false_passes_the_bytes_through_untouched() {
    let layout = Layout::new("no-prefix");
    let raw = "{\"level\":\"info\",\"msg\":\"a | b\"}\n\tindented\r\nno newline at the end";
    layout.service_with(
        "json",
        &format!(
            "printf '%s' {}\nexec sleep 1000",
            crate::harness::sh_quote(raw)
        ),
        "log-prefix = false\n",
    );
    let mut pidvisor = layout.start();
    pidvisor.wait_until("the service has printed", |p| {
        p.stdout_so_far().ends_with("at the end")
    });
    let run = pidvisor.shut_down();
    assert_eq!(run.stdout, raw, "{run}");
}

/// The pid (as the test sees it) of pidvisor's child whose command line contains `needle`.
/// Gives `service` a `log/run` that appends every line it reads to the file `logged`.
fn line_logger(layout: &Layout, service: &str) {
    layout.write(
        service,
        "log/run",
        &format!(
            "#!/bin/sh\nexec >> {}\nwhile IFS= read -r line; do printf '%s\\n' \"$line\"; done\n",
            layout.quoted("logged")
        ),
        0o755,
    );
}

fn child_running(pidvisor: &mut Pidvisor, needle: &str) -> i32 {
    let pid1 = pidvisor.host_pid();
    let mut found = None;
    pidvisor.wait_until(&format!("a child runs {needle}"), |_| {
        found = children_of(pid1).into_iter().map(|p| p.pid).find(|pid| {
            fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
        });
        found.is_some()
    });
    found.expect("found")
}

fn send(pid: i32, signo: libc::c_int) {
    // SAFETY: kill has no memory-safety preconditions.
    let rc = unsafe { libc::kill(pid, signo) };
    assert_eq!(rc, 0, "kill({pid}, {signo})");
}

/// Stops the logger and waits until it is stopped for real: a signal is delivered some
/// time after kill() returns, and a logger not yet stopped could still read (and then,
/// killed, lose) the start of the next line.
fn stop_logger(pidvisor: &mut Pidvisor) -> i32 {
    let logger = child_running(pidvisor, "ticker/log/run");
    send(logger, libc::SIGSTOP);
    pidvisor.wait_until("the logger is stopped", |_| {
        proc_stat(logger).is_some_and(|p| p.state == 'T')
    });
    logger
}

#[test]
fn the_logger_gets_every_line_exactly_once_when_it_and_its_service_are_killed() {
    let layout = Layout::new("logger-pipe");
    let fifo = layout.path("go");
    crate::harness::mkfifo(&fifo);
    let count = layout.quoted("count");
    // Each line written to the FIFO makes the service print the next 1000 numbered lines;
    // a restarted service goes on from the last number it saved. It opens the FIFO for
    // reading and writing, so that it never sees an end of file when a writer closes.
    layout.service(
        "ticker",
        &format!(
            "n=$(cat {count} 2>/dev/null || echo 0)\n\
             exec 3<> {}\n\
             while :; do\n\
               read go <&3\n\
               end=$((n + 1000))\n\
               while [ $n -lt $end ]; do n=$((n + 1)); echo \"line $n\"; done\n\
               echo $n > {count}\n\
             done",
            layout.quoted("go")
        ),
    );
    line_logger(&layout, "ticker");
    let mut pidvisor = layout.start();
    let batch = |pidvisor: &mut Pidvisor, end: usize| {
        use std::io::Write;
        fifo_writer(pidvisor, &fifo)
            .write_all(b"go\n")
            .expect("writing the FIFO");
        let count = layout.path("count");
        pidvisor.wait_until(&format!("the service has printed {end} lines"), |_| {
            fs::read_to_string(&count).is_ok_and(|c| c.trim() == end.to_string())
        });
    };

    batch(&mut pidvisor, 1000);
    layout.wait_for_lines(&mut pidvisor, "logged", 1000);
    // The logger stops reading; the next 1000 lines wait in the pipe; the logger dies.
    let logger = stop_logger(&mut pidvisor);
    batch(&mut pidvisor, 2000);
    send(logger, libc::SIGKILL);
    pidvisor.wait_for_log("ticker/log: killed by SIGKILL");
    layout.wait_for_lines(&mut pidvisor, "logged", 2000);

    // The new logger stops reading; the service prints 1000 more lines and dies; the
    // logger goes on, without seeing an end of file, and the restarted service too.
    let logger = stop_logger(&mut pidvisor);
    batch(&mut pidvisor, 3000);
    send(child_running(&mut pidvisor, "ticker/run"), libc::SIGKILL);
    pidvisor.wait_for_log("ticker: killed by SIGKILL");
    send(logger, libc::SIGCONT);
    batch(&mut pidvisor, 4000);
    layout.wait_for_lines(&mut pidvisor, "logged", 4000);

    let run = pidvisor.shut_down();
    let logged = layout.lines("logged");
    let expected: Vec<String> = (1..=4000).map(|n| format!("line {n}")).collect();
    let first_difference =
        (0..logged.len().max(expected.len())).find(|&i| logged.get(i) != expected.get(i));
    if let Some(at) = first_difference {
        panic!(
            "logged line {} is {:?}, expected {:?} ({} lines logged)\n{run}",
            at + 1,
            logged.get(at),
            expected.get(at),
            logged.len()
        );
    }
    let started = |name: &str| crate::layout::log_count(&run.stderr, &format!("{name}: started"));
    assert_eq!(started("ticker/log"), 2, "{run}");
    assert_eq!(started("ticker"), 2, "{run}");
    assert!(
        !run.stdout.contains("line "),
        "the lines went to the logger only\n{run}"
    );
}

#[test]
fn the_logger_gets_the_lines_its_service_writes_while_stopping() {
    let layout = Layout::new("logger-goodbye");
    // On TERM the service writes 200 more lines, then exits; its logger is stopped after.
    layout.service_with(
        "polite",
        "trap 'for i in $(seq 200); do echo \"goodbye $i\"; done; exit 0' TERM\n\
         echo hello\nsleep 1000 & wait",
        "",
    );
    line_logger(&layout, "polite");
    let mut pidvisor = layout.start();
    layout.wait_for_lines(&mut pidvisor, "logged", 1);
    let run = pidvisor.shut_down();
    let logged = layout.lines("logged");
    assert_eq!(logged.len(), 201, "last logged: {:?}\n{run}", logged.last());
}
