//! The image's own services (services.d: the web app, its log forwarder and the gossip
//! agent, the programs of examples/) under `docker run` and `docker stop`: they start and
//! answer, and `docker stop` asks each politely (the web app and the agent log their
//! SIGTERM; the forwarder, a logger, gets end of input once the web app is down and
//! flushes), none needs SIGKILL, the exit code is 0, and the time it took is printed.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::docker::{Container, docker, images};

#[test]
fn docker_stop_of_the_three_example_services_is_clean_and_quick() {
    let Some(images) = images() else { return };
    let container = Container::new("example-services");
    let run = container.start(&[], &images.example, &[]);
    run.wait_for_line("pidvisor: INFO webapp: ready");
    run.wait_for_line("pidvisor: INFO gossip: ready");

    let address = docker(&[
        "inspect",
        "--format",
        "{{.NetworkSettings.IPAddress}}",
        &container.name,
    ]);
    let page = get(address.trim(), "/");
    assert!(
        page.contains("\"requests\":1"),
        "GET / answers JSON: {page}"
    );
    run.wait_for_line(" GET / 200 ");

    let start = Instant::now();
    docker(&["stop", &container.name]);
    let stop_time = start.elapsed();
    let (code, output) = run.finish();
    assert_eq!(code, 0, "docker stop ends the container cleanly\n{output}");
    assert!(
        output.contains("webapp | ") && output.contains("received SIGTERM"),
        "{output}"
    );
    assert!(
        output.contains("gossip | ") && output.contains("stop signal received"),
        "{output}"
    );
    for service in ["gossip", "webapp", "webapp/log"] {
        assert!(
            output.contains(&format!("pidvisor: INFO {service}: stopped (exit code 0)")),
            "{service} stopped by itself with code 0\n{output}"
        );
    }
    assert!(
        !output.contains("SIGKILL"),
        "no SIGKILL was needed\n{output}"
    );
    assert!(
        stop_time < Duration::from_secs(5),
        "docker stop took {stop_time:?}\n{output}"
    );
    println!("docker stop of webapp + logfwd + gossip: {stop_time:?}");
}

/// GET `path` from the container's web app, with `Accept: application/json`; the body.
fn get(ip: &str, path: &str) -> String {
    let mut stream = TcpStream::connect((ip, 8080)).expect("the web app accepts");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout set");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {ip}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).expect("request sent");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response read");
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "GET {path}: {response}"
    );
    response.split("\r\n\r\n").nth(1).unwrap_or("").to_owned()
}
