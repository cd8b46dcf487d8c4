//! The s6 commands given what they cannot do: a clear message and s6's exit code.

use crate::support::{Image, outcome};

#[test]
fn s6_svc_refuses_with_s6_exit_codes() {
    let image = Image::new("s6-bad");
    image.script("services.d/web/run", "#!/bin/sh\nexec sleep 1000\n");
    let pidvisor = image.start(&[], &[]);
    let web = image.s6("services/web");
    let check = |args: &[&str], code: i32, says: &str| {
        let (got, stdout, stderr) = outcome(&image.run("s6-svc", args));
        assert_eq!(got, code, "s6-svc {args:?}: {stdout} {stderr}");
        assert!(stderr.contains(says), "s6-svc {args:?}: {stderr}");
    };
    check(&["-z", &web], 100, "unknown option -z");
    check(&["-O", &web], 100, "restart = \"never\"");
    check(&["-s", "SEGV", &web], 100, "only ALRM");
    check(&["-u"], 100, "no service directory");
    check(
        &["-u", "/nonexistent/redis"],
        111,
        "No such file or directory",
    );
    let not_a_service = image.path("bin");
    check(
        &["-u", &not_a_service],
        102,
        "not a supervised service directory",
    );
    // A service that is known still works alongside (SIGCONT: harmless to it).
    check(&["-c", &web], 0, "");
    let (code, _, stderr) = outcome(&image.run("s6-svwait", &["-D", "-t", "200", &web]));
    assert_eq!(code, 99, "{stderr}");
    assert!(stderr.contains("timed out"), "{stderr}");
    let (code, _, stderr) = outcome(&image.run("s6-svstat", &["/nonexistent/redis"]));
    assert_eq!(code, 1, "{stderr}");
    let (code, _, stderr) = outcome(&image.run("s6-setuidgid", &["no-such-user", "true"]));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("unknown user: no-such-user"), "{stderr}");
    let (code, _, _) = outcome(&image.run("with-contenv", &[]));
    assert_eq!(code, 100);
    pidvisor.shut_down();
}

#[test]
fn outside_a_pidvisor_container_they_say_so() {
    let image = Image::new("s6-outside");
    let (code, _, stderr) = outcome(&image.run("with-contenv", &["true"]));
    assert_eq!(code, 111, "{stderr}");
    assert!(
        stderr.contains("container_environment") && stderr.contains("does not exist"),
        "{stderr}"
    );
    let (code, _, stderr) = outcome(&image.run("s6-svc", &["-u", "/var/run/s6/services/web"]));
    assert_eq!(code, 102, "{stderr}");
    assert!(
        stderr.contains("is this container run by pidvisor"),
        "{stderr}"
    );
    let (code, _, _) = outcome(&image.run("s6-svstat", &["/var/run/s6/services/web"]));
    assert_eq!(code, 1);
    let (code, _, _) = outcome(&image.run("s6-svwait", &["/var/run/s6/services/web"]));
    assert_eq!(code, 111);
    // S6_KEEP_ENV=1: with-contenv runs the program with the environment as it is.
    let output = std::process::Command::new(image.bin("with-contenv"))
        .args(["sh", "-c", "echo kept $KEEP_ME"])
        .env("S6_KEEP_ENV", "1")
        .env("KEEP_ME", "yes")
        .env("PIDVISOR_S6_DIR", image.path("nowhere"))
        .output()
        .expect("with-contenv");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "kept yes\n");
}
