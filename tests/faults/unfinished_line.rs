//! A run's last line without a newline goes out as a line of its own when the run exits,
//! even when the service's output backlog is full at that moment (pidvisor has stopped
//! reading its pipe, so the line is still in the pipe, behind a backlog). It must not be
//! glued to the next run's first line.
//!
//! The full backlog is forced, not hoped for: pidvisor's stdout is a pipe the test does
//! not read until the second run has written its first line, and the first run writes
//! more than that pipe and the backlog can hold together, into a pipe it enlarged to
//! 1 MiB so that it never blocks and its last bytes surely wait there when it exits.

use std::fs::File;
use std::io::Read;
use std::os::fd::FromRawFd;
use std::thread;

use crate::harness::python;
use crate::layout::Layout;

/// Lines the first run writes: some 400 KB, far more than the 64 KiB of pidvisor's
/// stdout pipe plus the 64 KiB (and one 64 KiB read) of its backlog.
const LINES: usize = 40_000;

fn pipe() -> (File, File) {
    let mut fds = [0; 2];
    // SAFETY: fds has room for the two descriptors.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: pipe2 just created both; each gets one owner.
    unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) }
}

#[test]
fn the_last_unfinished_line_goes_out_at_exit_even_when_the_backlog_is_full() {
    let layout = Layout::new("unfinished-full-backlog");
    let runs = layout.quoted("runs");
    let first_run = format!(
        "import fcntl, os\n\
         F_SETPIPE_SZ = 1031\n\
         fcntl.fcntl(1, F_SETPIPE_SZ, 1 << 20)\n\
         lines = b''.join(b'line %d\\n' % i for i in range({LINES}))\n\
         os.write(1, lines + b'first-tail')\n"
    );
    layout.service_with(
        "glue",
        &format!(
            "echo run >> {runs}\n\
             if [ \"$(wc -l < {runs})\" -ge 2 ]; then echo second-head; echo ok >> {runs}; \
             exec sleep 1000; fi\n\
             {} - <<'EOF'\n{first_run}EOF\nexit 1",
            python()
        ),
        "restart-delay = \"10ms\"\n",
    );
    let (reader, writer) = pipe();
    let mut pidvisor = layout.launch(&[]).stdout_to(writer).start();
    // The second run has written its first line (into the pipe, behind the first run's).
    layout.wait_for_lines(&mut pidvisor, "runs", 3);
    let collector = thread::spawn(move || {
        let mut text = String::new();
        let mut reader = reader;
        reader.read_to_string(&mut text).map(|_| text)
    });
    let run = pidvisor.shut_down();
    let stdout = collector
        .join()
        .expect("reader thread")
        .expect("reading pidvisor's stdout");
    let lines: Vec<&str> = stdout.lines().collect();
    let mut expected: Vec<String> = (0..LINES).map(|i| format!("glue | line {i}")).collect();
    expected.push("glue | first-tail".to_owned());
    expected.push("glue | second-head".to_owned());
    if lines != expected {
        let first_wrong = lines
            .iter()
            .zip(&expected)
            .position(|(a, b)| a != b)
            .unwrap_or(lines.len().min(expected.len()));
        panic!(
            "line {first_wrong}: got {:?}, expected {:?} ({} lines, {} expected)\n{run}",
            lines.get(first_wrong),
            expected.get(first_wrong),
            lines.len(),
            expected.len()
        );
    }
}
