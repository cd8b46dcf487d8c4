//! The main command starts clean: no blocked and no ignored signal (when pidvisor itself
//! was started with none, as the harness ensures), although pidvisor blocks and ignores
//! signals for itself; and no file descriptor of pidvisor's own, only 0, 1, 2 and those
//! that pidvisor inherited from whoever started it.

use std::collections::BTreeMap;
use std::fs::File;

use crate::harness::{LIST_FDS, Launch, Run, TempDir, listed_fds, python};

#[test]
fn main_command_starts_with_no_blocked_and_no_ignored_signal() {
    let dir = TempDir::new("signal-state");
    let run = Launch::pid1(&dir, &["grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"]).run();
    run.assert_code(0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines,
        ["SigBlk:\t0000000000000000", "SigIgn:\t0000000000000000"],
        "{run}"
    );
}

fn fds_of_main_command(run: &Run) -> BTreeMap<i32, String> {
    listed_fds(run.stdout.lines())
}

#[test]
fn main_command_gets_only_stdin_stdout_and_stderr() {
    let dir = TempDir::new("fds-stdio-only");
    let run = Launch::pid1(&dir, &[python(), "-c", LIST_FDS]).run();
    run.assert_code(0);
    let fds = fds_of_main_command(&run);
    assert_eq!(fds.keys().copied().collect::<Vec<_>>(), [0, 1, 2], "{run}");
}

#[test]
fn descriptors_inherited_by_pidvisor_are_passed_to_the_main_command() {
    let dir = TempDir::new("fds-passed-through");
    let path = dir.file("socket-activation-stand-in");
    let file = File::create(&path).expect("create file");
    let run = Launch::pid1(&dir, &[python(), "-c", LIST_FDS])
        .pass_fd(file, 5)
        .run();
    run.assert_code(0);
    let fds = fds_of_main_command(&run);
    assert_eq!(
        fds.keys().copied().collect::<Vec<_>>(),
        [0, 1, 2, 5],
        "{run}"
    );
    assert_eq!(fds[&5], path, "{run}");
}
