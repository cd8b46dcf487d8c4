//! Reaping: orphans re-parented to pidvisor are all reaped, even when thousands of them
//! die at the same moment and SIGCHLD coalesces into a few notifications; no zombie is
//! left behind and pidvisor neither hangs nor loses track of its main command.
//!
//! The orphans come from `tests/fixtures/orphans.pl N`, which forks N children blocked on
//! a pipe and exits, so that they are re-parented to PID 1 and then all see end-of-file
//! and exit together.

use std::path::Path;
use std::time::Duration;

use crate::harness::{
    Launch, PATIENCE, TempDir, children_of, fixture, heavy, poll_until, sh_quote,
};

#[test]
fn ten_thousand_orphans_dying_at_once_are_all_reaped() {
    let _alone = heavy();
    let dir = TempDir::new("reap-10000");
    let done = dir.file("DONE");
    let script = format!(
        "perl {} 10000 && touch {} && exec sleep 1000",
        sh_quote(&fixture("orphans.pl")),
        sh_quote(&done)
    );
    let mut pidvisor = Launch::pid1(&dir, &["sh", "-c", &script]).start();
    let pid = pidvisor.host_pid();
    let main = pidvisor.main_pid();
    poll_until(
        Duration::from_secs(60),
        "orphans.pl has forked its 10000 children and exited",
        || {
            if Path::new(&done).exists() {
                Ok(())
            } else if pidvisor.has_exited() {
                panic!("pidvisor exited before orphans.pl was done");
            } else {
                Err(String::new())
            }
        },
    );
    poll_until(
        Duration::from_secs(60),
        "the main command is pidvisor's only child",
        || {
            let others: Vec<_> = children_of(pid)
                .into_iter()
                .filter(|p| p.pid != main)
                .collect();
            if others.is_empty() {
                return Ok(());
            }
            let zombies = others.iter().filter(|p| p.state == 'Z').count();
            Err(format!(
                "{} other children, {zombies} of them zombies",
                others.len()
            ))
        },
    );
    let children = children_of(pid);
    assert!(
        children.iter().all(|p| p.state != 'Z'),
        "zombie among pidvisor's children: {children:?}"
    );
    assert_eq!(
        children.iter().map(|p| p.pid).collect::<Vec<_>>(),
        [main],
        "only the main command is left"
    );
    // pidvisor still knows which child is the main command: its death is the exit code.
    pidvisor.signal(libc::SIGTERM);
    pidvisor.finish(PATIENCE).assert_code(143);
}

#[test]
fn a_thousand_orphans_dying_as_the_main_command_exits_do_not_hang_shutdown() {
    let _alone = heavy();
    let dir = TempDir::new("reap-1000");
    // orphans.pl is the main command: its exit starts the shutdown while its thousand
    // orphans die at once, some by themselves and some from the sweep's SIGTERM.
    let run = Launch::pid1(&dir, &["perl", &fixture("orphans.pl"), "1000"])
        .spawn()
        .finish(PATIENCE);
    run.assert_code(0);
}
