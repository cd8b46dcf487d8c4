//! Side by side with Debian's s6 (skipped, saying so, where it is not installed): the
//! same two services under the real s6-svscan and under pidvisor, and the same commands
//! against each. s6-svstat's lines and fields, and the exit codes of s6-svc, s6-svstat
//! and s6-svwait, must read the same once pids and seconds are masked.

use std::process::{Command, Stdio};

use crate::harness::{PATIENCE, as_pid_one, wait_until};
use crate::support::{Image, outcome};

/// Where Debian's s6 puts its tools.
const REAL: &str = "/usr/bin";

/// Every number as `N`: pids and seconds differ between the two runs.
fn masked(text: &str) -> String {
    let mut out = String::new();
    let mut in_number = false;
    for c in text.chars() {
        if c.is_ascii_digit() {
            if !in_number {
                out.push('N');
            }
            in_number = true;
        } else {
            out.push(c);
            in_number = false;
        }
    }
    out
}

/// Two services: `a` says ready on fd 3 and runs; `b` is down at boot (and exits 3).
fn lay_out(image: &Image, folder: &str) {
    image.file(&format!("{folder}/a/notification-fd"), "3\n");
    image.script(
        &format!("{folder}/a/run"),
        "#!/bin/sh\necho >&3\nexec sleep 1000\n",
    );
    image.file(&format!("{folder}/b/down"), "");
    image.script(&format!("{folder}/b/run"), "#!/bin/sh\nexit 3\n");
}

#[test]
fn svstat_and_svc_read_the_same_as_s6s_own() {
    if !std::path::Path::new(&format!("{REAL}/s6-svscan")).exists() {
        eprintln!("skipped: Debian's s6 is not installed (apt-get install s6)");
        return;
    }
    let image = Image::new("s6-compare");
    lay_out(&image, "scan");
    lay_out(&image, "services.d");
    // The real s6, PID 1 of a namespace of its own, so that it all goes when the test ends.
    let mut words = as_pid_one(&format!("{REAL}/s6-svscan"));
    words.push(image.path("scan"));
    let mut s6 = Command::new(&words[0])
        .args(&words[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("s6-svscan");
    let pidvisor = image.start(&[], &[]);

    let real = |tool: &str, args: &[&str]| {
        let args: Vec<String> = args
            .iter()
            .map(|a| a.replace("@DIR@", &image.path("scan")))
            .collect();
        let output = Command::new(format!("{REAL}/{tool}"))
            .args(&args)
            .output()
            .expect(tool);
        let (code, stdout, _) = outcome(&output);
        (code, masked(&stdout))
    };
    let ours = |tool: &str, args: &[&str]| {
        let args: Vec<String> = args
            .iter()
            .map(|a| a.replace("@DIR@", &image.s6("services")))
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, stdout, _) = outcome(&image.run(tool, &args));
        (code, masked(&stdout))
    };
    wait_until(PATIENCE, "s6 has service a up and ready", || {
        real("s6-svstat", &["-o", "up,ready", "@DIR@/a"]).1 == "true true\n"
    });
    assert_eq!(ours("s6-svwait", &["-U", "-t", "20000", "@DIR@/a"]).0, 0);

    let fields = "up,wantedup,normallyup,ready,paused,pid,exitcode,signal,signum";
    let same = |tool: &str, args: &[&str]| {
        let (s6_says, we_say) = (real(tool, args), ours(tool, args));
        assert_eq!(we_say, s6_says, "{tool} {args:?}: pidvisor's, then s6's");
        we_say
    };
    assert_eq!(
        same("s6-svstat", &["@DIR@/a"]).1,
        "up (pid N) N seconds, ready N seconds\n"
    );
    same("s6-svstat", &["-o", fields, "@DIR@/a"]);
    same("s6-svstat", &["@DIR@/b"]);
    same("s6-svstat", &["-o", fields, "@DIR@/b"]);
    same("s6-svstat", &["-upes", "@DIR@/a"]);

    // Down with s6-svc -d, waited for with -wD.
    same("s6-svc", &["-d", "-wD", "-T", "20000", "@DIR@/a"]);
    assert_eq!(
        same("s6-svstat", &["@DIR@/a"]).1,
        "down (signal SIGTERM) N seconds, normally up, ready N seconds\n"
    );
    same("s6-svstat", &["-o", fields, "@DIR@/a"]);
    same("s6-svstat", &["-n", "@DIR@/a"]);
    // And up again.
    same("s6-svc", &["-u", "-wU", "-T", "20000", "@DIR@/a"]);
    same("s6-svstat", &["-o", "up,wantedup,ready", "@DIR@/a"]);

    // Exit codes of the mistakes scripts make.
    same("s6-svc", &["-z", "@DIR@/a"]);
    same("s6-svc", &["-u", "/nonexistent/redis"]);
    same("s6-svstat", &["/nonexistent/redis"]);
    same("s6-svstat", &["-o", "bogus", "@DIR@/a"]);
    same("s6-svwait", &["-u", "-t", "100", "@DIR@/b"]);
    same("s6-svwait", &["-u", "/nonexistent/redis"]);

    let _ = s6.kill();
    let _ = s6.wait();
    pidvisor.shut_down();
}
