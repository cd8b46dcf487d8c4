//! Not PID 1: pidvisor registers as child subreaper and says so once, orphans of its
//! descendants are re-parented to it, and its shutdown sweep signals its own descendants
//! and nothing else (where PID 1 would use `kill(-1)`).

use std::fs;

use crate::harness::{
    Launch, PATIENCE, PIDVISOR, ProcStat, TempDir, mkfifo, proc_stat, sh_quote, write_fifo,
};

/// Kills the orphan if the test fails before the sweep did: had it gone to the host's
/// init instead of pidvisor, the harness's cleanup (pidvisor and its descendants) would
/// miss it.
struct KillOnDrop(ProcStat);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let orphan = &self.0;
        if proc_stat(orphan.pid).is_some_and(|p| p.starttime == orphan.starttime) {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(orphan.pid, libc::SIGKILL) };
        }
    }
}

#[test]
fn not_pid1_adopts_orphaned_descendants_and_sweeps_them_at_shutdown() {
    let dir = TempDir::new("subreaper");
    let pidfile = dir.file("sleep.pid");
    let fifo = dir.file("go");
    mkfifo(&fifo);
    // A subshell starts sleep and exits, orphaning it while the main command stays alive
    // until the test writes to the FIFO; then the main command exits 0.
    let script = format!(
        "(sleep 1000 & echo $! > {pid}.tmp && mv {pid}.tmp {pid}); read go < {fifo}; exit 0",
        pid = sh_quote(&pidfile),
        fifo = sh_quote(&fifo)
    );
    let mut pidvisor = Launch::direct(&dir, &["sh", "-c", &script]).start();
    let pid = pidvisor.host_pid();
    pidvisor.wait_for_file(&pidfile);
    let sleep: i32 = fs::read_to_string(&pidfile)
        .expect("read pid file")
        .trim()
        .parse()
        .expect("pid");
    let _cleanup = KillOnDrop(proc_stat(sleep).expect("sleep is alive"));
    // (The background child may be re-parented before it has exec'd sleep.)
    pidvisor.wait_until("the orphaned sleep is re-parented to pidvisor", |_| {
        proc_stat(sleep).is_some_and(|p| p.ppid == pid && p.comm == "sleep")
    });
    let adopted = proc_stat(sleep).expect("sleep is alive");

    write_fifo(&fifo);
    let run = pidvisor.finish(PATIENCE);
    run.assert_code(0);
    // pidvisor only exits once it has no child left, so the sweep has killed the sleep
    // and pidvisor has reaped it: its pid is gone (or belongs to a newer process).
    assert!(
        proc_stat(sleep).is_none_or(|p| p.starttime != adopted.starttime),
        "the orphaned sleep survived: {:?}\n{run}",
        proc_stat(sleep)
    );
    assert_eq!(
        run.stderr.matches("child subreaper").count(),
        1,
        "says 'child subreaper' exactly once\n{run}"
    );
}

#[test]
fn subreaper_sweep_spares_processes_that_are_not_its_descendants() {
    let dir = TempDir::new("subreaper-spares");
    // Inside a PID namespace, so that a wrong sweep by kill(-1) can only hurt the
    // namespace: a pidvisor as PID 1 runs a shell that runs `inner.sh`, which runs the
    // pidvisor under test (not PID 1) and reports its exit code. The main command leaves
    // a sleep behind for the sweep. A kill(-1) from the inner pidvisor would kill
    // inner.sh and the outer shell, which are not its descendants, before it exits.
    let inner = dir.file("inner.sh");
    fs::write(
        &inner,
        format!(
            "{} -- sh -c 'sleep 1000 & exit 0'\necho \"pidvisor-exit=$?\"\n",
            sh_quote(PIDVISOR)
        ),
    )
    .expect("write inner.sh");
    let outer = format!("sh {}; echo \"inner-exit=$?\"", sh_quote(&inner));
    let run = Launch::pid1(&dir, &["sh", "-c", &outer]).run();
    run.assert_code(0);
    assert!(run.stdout.contains("pidvisor-exit=0"), "{run}");
    assert!(run.stdout.contains("inner-exit=0"), "{run}");
}
