//! A stdout nobody reads never stalls PID 1: with its stdout a pipe the test does not read
//! and a service flooding it, pidvisor still stops on SIGTERM within its bound, still
//! restarts a crashing service, and still answers `pidvisorctl`; once the pipe is read
//! again, every service line arrives whole, in order, and none is missing. With its
//! stderr unread, pidvisor's own log lines do not stall it either: they are dropped
//! beyond a bound, and a later line says how many.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::symlink;
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{PATIENCE, PIDVISOR, Pidvisor, descendants_of, timed};
use crate::layout::Layout;

const FILLER: &str = "lorem ipsum dolor sit amet, consectetur adipiscing elit";

/// A pipe: (read end, write end), both close-on-exec.
fn pipe() -> (File, File) {
    let mut fds = [0; 2];
    // SAFETY: fds has room for the two descriptors.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: pipe2 just created both; each gets one owner.
    unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) }
}

/// Bytes waiting in the pipe whose read end is `reader`.
fn unread(reader: &File) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int.
    let rc = unsafe { libc::ioctl(reader.as_raw_fd(), libc::FIONREAD, &mut n) };
    assert_eq!(rc, 0, "FIONREAD: {}", std::io::Error::last_os_error());
    n as usize
}

/// Whether the pipe (or socket) whose write end is `writer` is full: it would take
/// nothing now.
fn is_full(writer: &File) -> bool {
    let mut poll = libc::pollfd {
        fd: writer.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no wait.
    let rc = unsafe { libc::poll(&mut poll, 1, 0) };
    assert!(rc >= 0, "poll: {}", std::io::Error::last_os_error());
    poll.revents & libc::POLLOUT == 0
}

/// Waits until the pipe to pidvisor's stderr is full (`writer` is a copy of its write
/// end): pidvisor's writes are refused from then on.
fn wait_until_full(pidvisor: &mut Pidvisor, writer: &File) {
    pidvisor.wait_until("pidvisor's stderr pipe is full", |_| is_full(writer));
}

/// How long the flood must stay blocked, with nothing more reaching the stream, before
/// the test believes pidvisor has stopped reading it (a loaded machine can hold pidvisor
/// off the CPU for a moment; not for this long).
const STALL_PROOF: Duration = Duration::from_millis(300);

/// Waits until the flood is stalled: blocked in `write` on its full pipe, because
/// pidvisor's backlog for it is full, because the stream (whose other end is `reader`)
/// takes nothing: `seq` blocked and no new byte in the stream for [`STALL_PROOF`].
fn wait_until_stalled(pidvisor: &mut Pidvisor, reader: &File) {
    let root = pidvisor.host_pid();
    let (mut last, mut since) = (usize::MAX, Instant::now());
    pidvisor.wait_until("the flood is stalled", |_| {
        let bytes = unread(reader);
        let blocked = descendants_of(root)
            .iter()
            .any(|p| p.comm == "seq" && blocked_in_write(p.pid));
        if !blocked || bytes != last {
            (last, since) = (bytes, Instant::now());
        }
        blocked && since.elapsed() >= STALL_PROOF
    });
}

/// Whether `pid` is blocked in the `write` system call (x86_64 number 1).
fn blocked_in_write(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/syscall"))
        .is_ok_and(|text| text.split_whitespace().next() == Some("1"))
}

/// A pipe for pidvisor's stdout or stderr that the test leaves unread: its read end, a
/// copy of its write end (to see whether it is full) and the write end for pidvisor.
fn unread_pipe() -> (File, File, File) {
    let (reader, writer) = pipe();
    let probe = writer.try_clone().expect("dup");
    (reader, probe, writer)
}

/// A service that crashes for ever, restarted after `delay`: it counts its runs in the
/// file `runs`, then runs `then`.
fn crasher(layout: &Layout, then: &str, delay: &str) {
    let runs = layout.quoted("runs");
    layout.service_with(
        "crasher",
        &format!("echo run >> {runs}\n{then}\nexit 1"),
        &format!("restart-delay = \"{delay}\"\nrestart-factor = 1.0\nmax-restarts = 0\n"),
    );
}

/// Waits until the crasher has run `more` more times.
fn wait_for_more_runs(layout: &Layout, pidvisor: &mut Pidvisor, more: usize) {
    let before = layout.lines("runs").len();
    layout.wait_for_lines(pidvisor, "runs", before + more);
}

/// A service that prints numbered lines for ever, as fast as it can.
fn flood(layout: &Layout) {
    layout.service(
        "flood",
        &format!("exec seq -f \"flood %g {FILLER}\" 1 1000000000"),
    );
}

/// Checks that `stdout` is whole prefixed lines: the flood's numbered 1, 2, 3... with none
/// missing, and the crasher's `run N` numbered the same way; returns (flood, crasher)
/// line counts. The flood's very last line may be cut short: SIGTERM ends `seq` in the
/// middle of a line, and pidvisor passes an unfinished last line on as a line.
fn check_whole_lines(stdout: &str) -> Result<(usize, usize), String> {
    if !stdout.is_empty() && !stdout.ends_with('\n') {
        let tail = &stdout[stdout.len().saturating_sub(80)..];
        return Err(format!("torn last line: {tail:?}"));
    }
    let lines: Vec<&str> = stdout.lines().collect();
    let (mut floods, mut runs) = (0, 0);
    for (number, line) in lines.iter().enumerate() {
        let expected_flood = format!("flood | flood {} {FILLER}", floods + 1);
        let expected_run = format!("crasher | run {}", runs + 1);
        let last_of_the_flood = !lines[number + 1..].iter().any(|l| l.starts_with("flood |"));
        if *line == expected_flood || (last_of_the_flood && expected_flood.starts_with(line)) {
            floods += 1;
        } else if *line == expected_run {
            runs += 1;
        } else if line.starts_with("pidvisor: ") && !line.contains(" | ") {
            // pidvisor's own line, when stderr is the same pipe.
        } else {
            let around = &lines[number.saturating_sub(2)..(number + 3).min(lines.len())];
            return Err(format!(
                "stdout line {}: {line:?}, expected {expected_flood:?} or {expected_run:?}; \
                 around it: {around:#?}",
                number + 1
            ));
        }
    }
    Ok((floods, runs))
}

/// Reads the pipe to its end in a thread (once every writer has closed it).
fn read_to_end_in_thread(mut reader: File) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        reader.read_to_string(&mut text).expect("read stdout pipe");
        text
    })
}

/// `pidvisorctl status` against the pidvisor of `layout`: its output, or a panic if it
/// has not answered within 10 s.
fn ctl_status(layout: &Layout) -> String {
    let ctl = layout.path("pidvisorctl");
    if !std::path::Path::new(&ctl).exists() {
        symlink(PIDVISOR, &ctl).expect("symlink pidvisorctl");
    }
    let mut child = Command::new(&ctl)
        .args(["--socket", &layout.path("control.sock"), "status"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pidvisorctl");
    let started = Instant::now();
    while child.try_wait().expect("try_wait").is_none() {
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("pidvisorctl status did not answer within 10 s");
        }
        thread::sleep(Duration::from_millis(5));
    }
    let output = child.wait_with_output().expect("pidvisorctl output");
    assert!(output.status.success(), "pidvisorctl status: {output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn sigterm_ends_the_container_though_nobody_reads_its_stdout() {
    let (reader, writer) = pipe();
    sigterm_ends_the_container_though_nobody_reads(reader, writer);
}

#[test]
fn sigterm_ends_the_container_though_nobody_reads_its_stdout_socket() {
    // journald and some log drivers give a socket: written with MSG_DONTWAIT.
    let (reader, writer) = UnixStream::pair().expect("socketpair");
    sigterm_ends_the_container_though_nobody_reads(
        File::from(OwnedFd::from(reader)),
        File::from(OwnedFd::from(writer)),
    );
}

/// pidvisor's stdout is `writer`, whose other end `reader` nobody reads until the end.
fn sigterm_ends_the_container_though_nobody_reads(reader: File, writer: File) {
    let _timed = timed();
    let layout = Layout::new("stalled-sigterm");
    flood(&layout);
    let mut pidvisor = layout.launch(&["--grace", "1s"]).stdout_to(writer).start();
    wait_until_stalled(&mut pidvisor, &reader);
    let asked = Instant::now();
    pidvisor.signal(libc::SIGTERM);
    // The flood stops at once; then pidvisor waits up to its grace time (1 s) for the
    // stream to take what is left, and exits.
    let run = pidvisor.finish(PATIENCE);
    let took = run.exited_at - asked;
    run.assert_code(0);
    assert!(took < Duration::from_secs(6), "took {took:?}\n{run}");
    assert!(
        run.stderr.contains("bytes of output unwritten"),
        "the loss is reported\n{run}"
    );
    // What the stream had not taken when the grace time ran out is lost (the README says
    // so), possibly with the end of a line pidvisor had begun to write: up to the last
    // newline, the lines are whole.
    let stdout = read_to_end_in_thread(reader).join().expect("reader");
    let whole = &stdout[..stdout.rfind('\n').map_or(0, |i| i + 1)];
    let (floods, _) = check_whole_lines(whole).unwrap_or_else(|e| panic!("{e}\n{run}"));
    assert!(floods > 500, "{floods} lines");
}

#[test]
fn a_stalled_stdout_stalls_neither_restarts_nor_the_control_socket_and_loses_no_line() {
    let layout = Layout::new("stalled-loop");
    flood(&layout);
    let runs = layout.quoted("runs");
    crasher(&layout, &format!("echo \"run $(wc -l < {runs})\""), "10ms");
    // stdout and stderr are one pipe (`2>&1`): pidvisor's log lines and the services'
    // lines must not tear each other either.
    let (reader, probe, writer) = unread_pipe();
    let stderr = writer.try_clone().expect("dup");
    let mut pidvisor = layout
        .launch(&[])
        .stdout_to(writer)
        .stderr_to(stderr)
        .start();
    wait_until_stalled(&mut pidvisor, &reader);

    // (b) The crashing service is still restarted, counted from its own marker file.
    wait_for_more_runs(&layout, &mut pidvisor, 5);
    assert!(is_full(&probe), "the pipe is still full");
    assert!(unread(&reader) > 0);
    // (c) The control socket still answers.
    let status = ctl_status(&layout);
    assert!(
        status.contains("flood") && status.contains("crasher"),
        "{status}"
    );

    // The pipe is read again: the flood goes on where it stopped.
    drop(probe);
    let collected = read_to_end_in_thread(reader);
    wait_for_more_runs(&layout, &mut pidvisor, 5);
    let run = pidvisor.shut_down();
    let stdout = collected.join().expect("reader");
    let (floods, runs) = check_whole_lines(&stdout).unwrap_or_else(|e| panic!("{e}\n{run}"));
    assert!(stdout.contains("pidvisor: INFO SIGTERM: shutting down"));
    // Only the last run may have been stopped between its marker and its line.
    let marked = layout.lines("runs").len();
    assert!(
        runs == marked || runs + 1 == marked,
        "{runs} run lines for {marked} runs\n{run}"
    );
    assert!(floods > 2000, "{floods} flood lines\n{run}");
    assert!(!stdout.contains("unwritten"), "{run}");
}

#[test]
fn an_unread_stderr_does_not_stall_pidvisor_and_dropped_log_lines_are_counted() {
    let layout = Layout::new("stalled-stderr");
    // Each run makes pidvisor log a few lines on stderr, and no more.
    crasher(&layout, "exec 2>/dev/null", "1ms");
    let (reader, probe, writer) = unread_pipe();
    let mut pidvisor = layout.launch(&[]).stderr_to(writer).start();
    wait_until_full(&mut pidvisor, &probe);
    // 64 KiB of log lines wait in pidvisor beyond the full pipe; this many more runs log
    // more than that, so some lines are dropped, and restarts go on regardless.
    wait_for_more_runs(&layout, &mut pidvisor, 800);
    drop(probe);
    let collected = read_to_end_in_thread(reader);
    wait_for_more_runs(&layout, &mut pidvisor, 5);
    pidvisor.signal(libc::SIGTERM);
    let run = pidvisor.finish(PATIENCE);
    run.assert_code(0);
    let stderr = collected.join().expect("reader");
    assert!(stderr.ends_with('\n'), "whole lines");
    for line in stderr.lines() {
        assert!(line.starts_with("pidvisor: "), "a torn line: {line:?}");
    }
    assert!(
        stderr.contains("of pidvisor's own log lines were dropped: stderr was not being read"),
        "the drop is reported: {}",
        &stderr[stderr.len().saturating_sub(2000)..]
    );
}
