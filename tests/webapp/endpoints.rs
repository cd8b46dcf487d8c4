//! Every endpoint, its answer and its side effect, and the access log on stdout.

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use crate::support::Webapp;

const JSON: [(&str, &str); 1] = [("Accept", "application/json")];

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body:?}"))
}

#[test]
fn index_as_json_names_the_node_and_counts_its_views() {
    let webapp = Webapp::start(&["--node", "web-1"]);
    let first = webapp.request("GET", "/", &JSON);
    assert_eq!(first.status, 200);
    assert_eq!(first.header("content-type"), Some("application/json"));
    let doc = json(&first.body);
    assert_eq!(doc["node"], "web-1");
    assert_eq!(doc["address"], "127.0.0.1");
    assert_eq!(doc["pid"], webapp.pid());
    assert_eq!(doc["requests"], 1);
    assert_eq!(doc["in_flight"], 1, "this request is in flight");
    assert!(doc["uptime_seconds"].is_u64(), "{doc}");

    assert_eq!(webapp.get("/health").status, 200);
    let second = json(
        &webapp
            .request(
                "GET",
                "/",
                &[("Accept", "text/plain, application/json;q=0.9")],
            )
            .body,
    );
    assert_eq!(second["requests"], 2, "only views of / count: {second}");
}

#[test]
fn index_is_html_by_default_with_the_node_name_escaped() {
    let webapp = Webapp::start(&["--node", "<web&1>"]);
    let browser = [("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")];
    for reply in [webapp.get("/"), webapp.request("GET", "/", &browser)] {
        assert_eq!(reply.status, 200);
        assert_eq!(
            reply.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert!(
            reply.body.contains("<h1>&lt;web&amp;1&gt;</h1>"),
            "{}",
            reply.body
        );
        assert!(reply.body.contains("<td>127.0.0.1</td>"), "{}", reply.body);
        assert!(
            reply.body.contains(&format!("<td>{}</td>", webapp.pid())),
            "{}",
            reply.body
        );
    }
    let third = webapp.get("/");
    assert!(
        third.body.contains("<tr><th>requests</th><td>3</td></tr>"),
        "{}",
        third.body
    );
}

#[test]
fn health_is_ok_while_serving() {
    let webapp = Webapp::start(&[]);
    let reply = webapp.get("/health");
    assert_eq!((reply.status, reply.body.as_str()), (200, "ok\n"));
    let head = webapp.request("HEAD", "/health", &[]);
    assert_eq!((head.status, head.body.as_str()), (200, ""));
}

#[test]
fn unknown_paths_get_404_and_other_methods_405() {
    let webapp = Webapp::start(&[]);
    let missing = webapp.get("/nope");
    assert_eq!(missing.status, 404);
    assert!(
        missing.body.contains("/health"),
        "lists the endpoints: {}",
        missing.body
    );
    let post = webapp.request("POST", "/", &[("Content-Length", "0")]);
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
}

#[test]
fn bad_parameters_get_400_with_a_hint_and_do_nothing() {
    let webapp = Webapp::start(&[]);
    for (target, hint) in [
        ("/slow?ms=abc", "/slow?ms=MILLISECONDS"),
        ("/slow?ms=60001", "0 to 60000"),
        ("/slow?delay=5", "unexpected parameter \"delay=5\""),
        ("/leak?mb=0", "1 to 1024"),
        ("/leak?mb=1025", "1 to 1024"),
        ("/exit?code=256", "0 to 255"),
        ("/exit?code=-1", "0 to 255"),
        ("/crash?signal=NOPE", "not a signal"),
        ("/crash?signal=0", "not a signal"),
        ("/crash?signal=CHLD", "does not end a process"),
        ("/crash?signal=SIGSTOP", "does not end a process"),
    ] {
        let reply = webapp.get(target);
        assert_eq!(reply.status, 400, "{target}: {reply:?}");
        assert!(
            reply.body.contains(hint),
            "{target}: {:?} lacks {hint:?}",
            reply.body
        );
    }
    assert_eq!(webapp.get("/health").status, 200, "still serving");
    let doc = json(&webapp.request("GET", "/", &JSON).body);
    assert!(
        doc["uptime_seconds"].is_u64(),
        "still the same process: {doc}"
    );
}

#[test]
fn slow_answers_after_its_delay() {
    let webapp = Webapp::start(&[]);
    let started = Instant::now();
    let reply = webapp.get("/slow?ms=500");
    let took = started.elapsed();
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (200, "answered after 500 ms\n")
    );
    assert!(
        took >= Duration::from_millis(500),
        "answered after {took:?}"
    );
    let line = webapp
        .stdout
        .wait_for("the /slow line", |l| l.contains("/slow"));
    let logged: f64 = line
        .rsplit(' ')
        .next()
        .and_then(|ms| ms.parse().ok())
        .expect("a duration");
    assert!(logged >= 500.0, "access log says {logged} ms: {line}");
}

#[test]
fn leak_keeps_memory_resident() {
    let webapp = Webapp::start(&[]);
    let before = webapp.resident_kib();
    let reply = webapp.get("/leak?mb=64");
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (200, "leaked 64 MiB, 64 MiB in all\n")
    );
    let after = webapp.resident_kib();
    assert!(
        after >= before + 64 * 1024,
        "VmRSS {before} kB -> {after} kB"
    );
    let more = webapp.get("/leak?mb=16");
    assert_eq!(more.body, "leaked 16 MiB, 80 MiB in all\n");
    assert!(webapp.resident_kib() >= before + 80 * 1024);
}

#[test]
fn exit_answers_then_ends_with_the_status_asked() {
    let mut webapp = Webapp::start(&[]);
    let reply = webapp.get("/exit?code=3");
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (200, "exiting with status 3\n")
    );
    assert_eq!(webapp.wait().code(), Some(3));
    assert!(
        webapp
            .stdout
            .all()
            .iter()
            .any(|l| l.contains("GET /exit?code=3 200 ")),
        "logged before exiting"
    );
    assert!(
        webapp
            .stderr
            .all()
            .iter()
            .any(|l| l.contains("exiting with status 3, as /exit asked"))
    );
}

#[test]
fn crash_answers_then_dies_of_the_signal_named() {
    for (name, signal) in [
        ("SEGV", libc::SIGSEGV),
        ("SIGABRT", libc::SIGABRT),
        ("9", libc::SIGKILL),
        // Caught for the graceful stop otherwise: /crash restores the default first.
        ("term", libc::SIGTERM),
    ] {
        let mut webapp = Webapp::start(&[]);
        let target = format!("/crash?signal={name}");
        let reply = webapp.get(&target);
        assert_eq!(reply.status, 200, "{target}: {reply:?}");
        assert!(reply.body.starts_with("dying of SIG"), "{}", reply.body);
        let status = webapp.wait();
        assert_eq!(status.signal(), Some(signal), "{target}: {status:?}");
        let logged = format!("GET {target} 200 ");
        assert!(
            webapp.stdout.all().iter().any(|l| l.contains(&logged)),
            "logged before dying"
        );
    }
}

#[test]
fn access_log_has_one_line_per_request_on_stdout() {
    let webapp = Webapp::start(&[]);
    let replies = [
        ("GET", "/", webapp.get("/")),
        ("GET", "/health", webapp.get("/health")),
        ("HEAD", "/health", webapp.request("HEAD", "/health", &[])),
        ("GET", "/nope?x=1", webapp.get("/nope?x=1")),
        ("GET", "/slow?ms=oops", webapp.get("/slow?ms=oops")),
        ("DELETE", "/", webapp.request("DELETE", "/", &[])),
        ("GET", "/slow?ms=1", webapp.get("/slow?ms=1")),
    ];
    let mut expected: Vec<String> = replies
        .iter()
        .map(|(method, target, reply)| {
            let bytes = if *method == "HEAD" {
                0
            } else {
                reply.body.len()
            };
            format!("127.0.0.1 {method} {target} {} {bytes}", reply.status)
        })
        .collect();
    let lines = webapp.stdout.wait_for_count(expected.len());
    // Handlers run side by side: a line may overtake the previous request's.
    let mut logged: Vec<String> = lines
        .iter()
        .map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            assert_eq!(fields.len(), 6, "six fields: {line:?}");
            let ms: f64 = fields[5]
                .parse()
                .unwrap_or_else(|_| panic!("duration in {line:?}"));
            assert!(
                ms >= 0.0 && fields[5].split('.').nth(1).map(str::len) == Some(3),
                "{line:?}"
            );
            fields[..5].join(" ")
        })
        .collect();
    logged.sort();
    expected.sort();
    assert_eq!(logged, expected);
    // Nothing more was written for those: the next line is the next request's.
    webapp.get("/health?last");
    let lines = webapp.stdout.wait_for_count(expected.len() + 1);
    assert_eq!(lines.len(), expected.len() + 1, "{lines:#?}");
    assert!(
        lines[expected.len()].starts_with("127.0.0.1 GET /health?last 200 3 "),
        "{lines:#?}"
    );
}
