//! Terminals: with a terminal on stdin, the main command's process group is the
//! terminal's foreground group, so a job-control shell works under pidvisor as PID 1: a
//! background job brought back with `fg` becomes the foreground job, and bash complains
//! neither about the terminal process group nor about job control. The terminal comes
//! from `script` (util-linux).

use crate::harness::{Launch, TempDir};

#[test]
fn main_command_is_the_terminals_foreground_process_group() {
    let dir = TempDir::new("tty");
    // The background job ends as soon as it is the terminal's foreground job (fields 5
    // and 8 of /proc/PID/stat: its process group and the terminal's foreground group),
    // so that `fg` can never find it already gone.
    let job = r#"sh -c 'while :; do set -- $(cat /proc/$$/stat); [ "$5" = "$8" ] && exit 0; sleep 0.01; done'"#;
    let script = format!("{job} & fg %1 && echo FG_OK; ps -o pgid=,tpgid= -p $$");
    let run = Launch::pid1_on_terminal(&dir, &["bash", "-m", "-c", &script]).run();
    run.assert_code(0);
    let output = &run.stdout;
    assert!(output.contains("FG_OK"), "fg worked\n{run}");
    for complaint in ["cannot set terminal process group", "no job control"] {
        assert!(
            !output.contains(complaint),
            "bash says {complaint:?}\n{run}"
        );
    }
    let groups: Vec<(i32, i32)> = output
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let pgid = words.next()?.parse().ok()?;
            let tpgid = words.next()?.parse().ok()?;
            words.next().is_none().then_some((pgid, tpgid))
        })
        .collect();
    assert_eq!(groups.len(), 1, "one 'pgid tpgid' line from ps\n{run}");
    let (pgid, tpgid) = groups[0];
    assert_eq!(pgid, tpgid, "bash's group is the foreground group\n{run}");
}
