//! The load balancer seen from outside: HAProxy's servers of backend `web`, read with
//! `show servers state web` on its runtime socket (`docker exec` + socat, which the lb
//! image has for people to do the same).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use crate::docker::{PATIENCE, docker, run_bounded};

/// A server of backend `web`: its name (the web node's gossip name, its hostname), its
/// address, and whether HAProxy's health check counts it as up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub addr: String,
    pub up: bool,
}

/// The servers of backend `web` in the lb container, by name; `Err` with the reason while
/// HAProxy does not answer (it is still starting: no socket yet).
pub fn servers(container: &str) -> Result<BTreeMap<String, Server>, String> {
    let output = run_bounded(
        Command::new("docker").args([
            "exec",
            container,
            "sh",
            "-c",
            "echo 'show servers state web' | socat stdio unix-connect:/run/haproxy/admin.sock",
        ]),
        PATIENCE,
    )?;
    if output.status.success() {
        Ok(parse(&output.stdout))
    } else {
        Err(format!("show servers state web: {}", output.stderr.trim()))
    }
}

/// `show servers state`: a version line, a `#` header, then one row per server:
/// `be_id be_name srv_id srv_name srv_addr srv_op_state ...` (op_state 2: running).
fn parse(answer: &str) -> BTreeMap<String, Server> {
    answer
        .lines()
        .filter(|row| !row.starts_with('#'))
        .filter_map(|row| {
            let fields: Vec<&str> = row.split_whitespace().collect();
            let (name, addr, op_state) = (fields.get(3)?, fields.get(4)?, fields.get(5)?);
            Some((
                (*name).to_owned(),
                Server {
                    addr: (*addr).to_owned(),
                    up: *op_state == "2",
                },
            ))
        })
        .collect()
}

/// Whether the servers are exactly `names`, all up.
pub fn exactly_up(servers: &BTreeMap<String, Server>, names: &[String]) -> bool {
    servers.len() == names.len()
        && names
            .iter()
            .all(|name| servers.get(name).is_some_and(|server| server.up))
}

/// The name HAProxy knows a web container by: its gossip name, which is its hostname.
pub fn server_name(container: &str) -> String {
    docker(&["inspect", "--format", "{{.Config.Hostname}}", container])
        .trim()
        .to_owned()
}

/// The stats page as CSV (`/;csv`, from the lb's published stats port): one row per
/// proxy and server, `pxname,svname,...`.
pub fn stats_csv(stats: SocketAddr) -> Result<String, String> {
    let mut stream = TcpStream::connect_timeout(&stats, Duration::from_secs(5))
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET /;csv HTTP/1.1\r\nHost: lb\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("send: {e}"))?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| format!("receive: {e}"))?;
    if response.starts_with("HTTP/1.1 200") {
        Ok(response)
    } else {
        Err(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_of_show_servers_state() {
        let answer = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state\n\
                      3 web 1 0a1b2c3d4e5f 172.18.0.5 2 0 1 1 5 1 0 2 0 0 0 0 - 8080 - 0 0 - - 0\n\
                      3 web 2 f00dcafe0000 172.18.0.6 0 0 1 1 5 1 0 2 0 0 0 0 - 8080 - 0 0 - - 0\n";
        let servers = parse(answer);
        assert_eq!(servers.len(), 2);
        assert!(servers["0a1b2c3d4e5f"].up);
        assert_eq!(servers["f00dcafe0000"].addr, "172.18.0.6");
        assert!(!servers["f00dcafe0000"].up);
        assert!(!exactly_up(&servers, &["0a1b2c3d4e5f".to_owned()]));
    }
}
