//! `docker run -it IMAGE bash` gets job control: bash is the terminal's foreground
//! process group, so a background job can be brought back with `fg`, and Ctrl-C then
//! reaches that job, not bash or pidvisor. The terminal is `script`'s pty, the test types
//! into it; every command's output carries a marker computed by the shell (`$((1+1))`),
//! so that the echo of the typed line never counts as its output.

use std::process::Command;

use crate::docker::{Attached, Container, images};

#[test]
fn docker_run_it_bash_has_job_control() {
    job_control(&[]);
}

#[test]
fn docker_run_it_bash_has_job_control_under_docker_init() {
    job_control(&["--init"]);
}

fn job_control(options: &[&str]) {
    let Some(images) = images() else { return };
    let container = Container::new("tty");
    let mut all = vec!["--rm", "-it", "--tmpfs", "/etc/services.d"];
    all.extend(options);
    let docker_run = format!(
        "docker {}",
        shell_words(&container.run_args(&all, &images.example, &["bash"]))
    );
    let mut tty = Attached::spawn(Command::new("script").args(["-qec", &docker_run, "/dev/null"]));

    tty.send("echo \"FLAGS-$((1+1)) $-\"\n");
    let flags = tty.wait_for_line("FLAGS-2 ");
    assert!(
        flags
            .trim_end()
            .rsplit(' ')
            .next()
            .is_some_and(|f| f.contains('m')),
        "bash's flags include m (monitor: job control on): {flags:?}\n{}",
        tty.output()
    );

    // A job that waits in the background until it is the terminal's foreground job
    // (fields 5 and 8 of /proc/PID/stat: its process group and the terminal's foreground
    // group), then says so and sleeps.
    tty.send(
        "sh -c 'while set -- $(cat /proc/$$/stat); [ \"$5\" != \"$8\" ]; do sleep 0.01; done; \
         echo \"FOREGROUND-$((6*7))\"; exec sleep 100' &\n",
    );
    tty.send("jobs; echo \"JOBS-$((1+1))\"\n");
    tty.wait_for_line("JOBS-2");
    let output = tty.output();
    assert!(
        output.contains("[1]+  Running"),
        "`jobs` lists the background job\n{output}"
    );
    assert!(
        !output.contains("FOREGROUND-42"),
        "the background job is not in the foreground group\n{output}"
    );

    tty.send("fg %1\n");
    tty.wait_for_line("FOREGROUND-42");
    // Ctrl-C: the terminal sends SIGINT to its foreground group, the job's only.
    tty.send("\x03");
    tty.send("echo \"FG-$((1+1)) $?\"\n");
    let status = tty.wait_for_line("FG-2 ");
    assert!(
        status.trim_end().ends_with("FG-2 130"),
        "the job died of Ctrl-C's SIGINT (130): {status:?}\n{}",
        tty.output()
    );

    tty.send("exit\n");
    let (code, output) = tty.finish();
    assert_eq!(
        code, 0,
        "bash, then pidvisor, then docker run exit 0\n{output}"
    );
    for complaint in ["no job control", "cannot set terminal process group"] {
        assert!(
            !output.contains(complaint),
            "bash says {complaint:?}\n{output}"
        );
    }
}

/// The words quoted for `sh` (`script -c` runs its command through the shell).
fn shell_words(words: &[String]) -> String {
    words
        .iter()
        .map(|word| format!("'{}'", word.replace('\'', r"'\''")))
        .collect::<Vec<_>>()
        .join(" ")
}
