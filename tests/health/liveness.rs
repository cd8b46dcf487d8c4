//! Liveness checks (`health = { command | tcp | http }`) and HTTP readiness checks: a
//! service that fails its checks in a row is restarted, as a crash; a check that hangs is
//! killed at its timeout with everything it started, and leaves no zombie.

use std::fs;
use std::net::TcpListener;

use crate::harness::{PATIENCE, TempDir, descendants_of, poll_until, python, wait_until};
use crate::support::{ctl, events_of, read_events, service, start, status, wait_for_event};

/// A port nothing listens on now (the service binds it next).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// An HTTP server on `port`: `/health` answers 500 while the file `sick` exists in the
/// service folder, 200 otherwise.
const HTTP_SERVER: &str = r#"
import http.server, os, sys
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code = 500 if os.path.exists("sick") else 200
        self.send_response(code)
        self.end_headers()
        self.wfile.write(b"sick\n" if code == 500 else b"fine\n")
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Health).serve_forever()
"#;

#[test]
fn an_http_service_that_turns_unhealthy_is_restarted_and_healthy_again_once_fixed() {
    let dir = TempDir::new("live-http");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/health");
    service(
        &dir,
        "web",
        &format!("exec {} server.py {port}", python()),
        &format!(
            "ready = {{ http = \"{url}\" }}\nhealth = {{ http = \"{url}\" }}\n\
             health-interval = \"100ms\"\nhealth-failures = 2\nrestart-delay = \"10ms\"\n"
        ),
    );
    let folder = dir.path().join("services.d/web");
    fs::write(folder.join("server.py"), HTTP_SERVER).expect("server.py");
    let _pidvisor = start(&dir, &[]);
    wait_for_event(&dir, "web is ready by its HTTP check", |e| {
        e["service"] == "web" && e["event"] == "ready"
    });
    wait_until(PATIENCE, "status says healthy", || {
        status(&dir, "web")["health"] == "healthy"
    });
    let web = status(&dir, "web");
    assert_eq!(web["last_check"]["ok"], true, "{web}");
    assert_eq!(web["last_check"]["message"], "HTTP/1.0 200 OK", "{web}");
    ctl(&dir, &["health"]).expect(0);

    fs::write(folder.join("sick"), "").expect("sick");
    wait_for_event(&dir, "web is unhealthy", |e| {
        e["service"] == "web" && e["event"] == "unhealthy"
    });
    // While sick, the new run is not ready either (its HTTP readiness check fails too).
    poll_until(PATIENCE, "web is started again", || {
        match events_of(&read_events(&dir), "web", "started").len() {
            2.. => Ok(()),
            n => Err(format!("{n} started events")),
        }
    });
    let run = ctl(&dir, &["health"]).expect(1);
    assert!(run.stdout.starts_with("web: "), "{run:?}");
    fs::remove_file(folder.join("sick")).expect("cured");
    wait_for_event(&dir, "web is healthy again", |e| {
        e["service"] == "web" && e["event"] == "healthy"
    });
    ctl(&dir, &["health"]).expect(0);

    let events = read_events(&dir);
    let unhealthy = events_of(&events, "web", "unhealthy")[0];
    assert_eq!(unhealthy["message"], "HTTP/1.0 500 Internal Server Error");
    assert_eq!(unhealthy["failures"], 2);
    // A crash for the restart policy: it was stopped, then restarted.
    let kinds: Vec<&str> = events
        .iter()
        .filter(|e| e["service"] == "web")
        .filter_map(|e| e["event"].as_str())
        .collect();
    let from = kinds
        .iter()
        .position(|k| *k == "unhealthy")
        .expect("unhealthy");
    assert_eq!(
        &kinds[from..from + 4],
        ["unhealthy", "exited", "restart_scheduled", "started"],
        "{kinds:?}"
    );
    assert_eq!(events_of(&events, "web", "ready").len(), 2, "{kinds:?}");
}

#[test]
fn a_hung_check_is_killed_with_its_children_at_its_timeout_and_counts_as_a_failure() {
    let dir = TempDir::new("live-hung");
    // The check hangs, with a child that ignores SIGTERM, and would never end.
    let check = "trap '' TERM; sleep 2000 & exec sleep 2001";
    service(
        &dir,
        "worker",
        "exec sleep 1000",
        &format!(
            "health = {{ command = {} }}\nhealth-interval = \"50ms\"\n\
             health-timeout = \"200ms\"\nhealth-failures = 2\nrestart-delay = \"1h\"\n\
             restart-delay-max = \"2h\"\n",
            toml_string(check)
        ),
    );
    let mut pidvisor = start(&dir, &[]);
    let pid = pidvisor.host_pid();
    let sleepers = || {
        descendants_of(pid)
            .into_iter()
            .filter(|p| {
                let cmdline = fs::read(format!("/proc/{}/cmdline", p.pid)).unwrap_or_default();
                p.state == 'Z' || String::from_utf8_lossy(&cmdline).contains("sleep\u{0}200")
            })
            .count()
    };
    wait_until(PATIENCE, "a check runs, with its child", || sleepers() == 2);
    wait_for_event(&dir, "worker is unhealthy", |e| {
        e["service"] == "worker" && e["event"] == "unhealthy"
    });
    let events = read_events(&dir);
    assert_eq!(
        events_of(&events, "worker", "unhealthy")[0]["message"],
        "timed out after 200ms"
    );
    wait_for_event(&dir, "worker is restarted", |e| {
        e["service"] == "worker" && e["event"] == "restart_scheduled" && e["restarts"] == 1
    });
    // Nothing of the hung checks is left (the child the check left behind is reaped as
    // an orphan), and no zombie: it is in backoff for an hour, so no new check starts.
    wait_until(PATIENCE, "no check process is left", || sleepers() == 0);
    pidvisor.wait_for_log("health check failed (2 of 2 in a row): timed out after 200ms");
}

#[test]
fn a_command_check_runs_with_the_services_environment_and_folder_and_a_tcp_check_connects() {
    let dir = TempDir::new("live-env");
    let port = free_port();
    service(
        &dir,
        "db",
        &format!("exec {} -m http.server --bind 127.0.0.1 {port}", python()),
        &format!(
            "ready = {{ tcp = \"127.0.0.1:{port}\" }}\nhealth = {{ tcp = \"127.0.0.1:{port}\" }}\n\
             health-interval = \"50ms\"\n"
        ),
    );
    let check = "test \"$PIDVISOR_SERVICE.$GREETING\" = app.hello && test -e alive";
    service(
        &dir,
        "app",
        "exec sleep 1000",
        &format!(
            "health = {{ command = {} }}\nhealth-interval = \"50ms\"\nhealth-failures = 1\n\
             [env]\nGREETING = \"hello\"\n",
            toml_string(check)
        ),
    );
    let alive = dir.path().join("services.d/app/alive");
    fs::write(&alive, "").expect("alive");
    let _pidvisor = start(&dir, &[]);
    wait_until(PATIENCE, "both are healthy", || {
        status(&dir, "db")["health"] == "healthy" && status(&dir, "app")["health"] == "healthy"
    });
    assert_eq!(status(&dir, "db")["last_check"]["message"], "connected");
    fs::remove_file(&alive).expect("rm alive");
    wait_for_event(&dir, "app is unhealthy", |e| {
        e["service"] == "app" && e["event"] == "unhealthy"
    });
    let events = read_events(&dir);
    assert_eq!(
        events_of(&events, "app", "unhealthy")[0]["message"],
        "exit code 1"
    );
    assert!(events_of(&events, "db", "unhealthy").is_empty());
}

fn toml_string(text: &str) -> String {
    serde_json::to_string(text).expect("JSON string")
}
