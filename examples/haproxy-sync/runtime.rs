//! A client of HAProxy's runtime API (the admin-level stats socket): one command per
//! connection, as HAProxy's non-interactive mode expects, each bounded in time.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long one command may take: HAProxy answers in microseconds unless it is stuck.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// A server of a backend, as `show servers state` lists it.
#[derive(Debug, PartialEq)]
pub struct Server {
    pub name: String,
    pub addr: String,
    pub port: u16,
}

pub struct Runtime {
    socket: PathBuf,
}

impl Runtime {
    pub fn new(socket: &Path) -> Runtime {
        Runtime {
            socket: socket.to_path_buf(),
        }
    }

    /// Sends one command and returns HAProxy's answer, trimmed.
    pub fn command(&self, command: &str) -> io::Result<String> {
        let mut stream = UnixStream::connect(&self.socket).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot connect to {}: {e}", self.socket.display()),
            )
        })?;
        stream.set_read_timeout(Some(COMMAND_TIMEOUT))?;
        stream.set_write_timeout(Some(COMMAND_TIMEOUT))?;
        stream.write_all(format!("{command}\n").as_bytes())?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        Ok(answer.trim().to_string())
    }

    /// Sends a command whose success HAProxy reports with `expected` (empty: no answer).
    pub fn expect(&self, command: &str, expected: &str) -> Result<(), String> {
        match self.command(command) {
            Ok(answer) if answer == expected => Ok(()),
            Ok(answer) => Err(format!("`{command}`: HAProxy answered {answer:?}")),
            Err(e) => Err(format!("`{command}`: {e}")),
        }
    }

    /// The servers of `backend`, dynamic and configured ones alike.
    pub fn servers(&self, backend: &str) -> Result<Vec<Server>, String> {
        let command = format!("show servers state {backend}");
        let answer = self
            .command(&command)
            .map_err(|e| format!("`{command}`: {e}"))?;
        parse_servers_state(&answer).map_err(|e| format!("`{command}`: {e}"))
    }

    /// The sessions that `backend/server` is serving now (`scur` in `show stat`).
    pub fn sessions(&self, backend: &str, server: &str) -> Result<u64, String> {
        let answer = self
            .command("show stat")
            .map_err(|e| format!("`show stat`: {e}"))?;
        parse_sessions(&answer, backend, server)
    }
}

/// Parses `show servers state`: a version line, a `#` header naming the columns, one row
/// per server.
fn parse_servers_state(answer: &str) -> Result<Vec<Server>, String> {
    let mut lines = answer.lines();
    let header = lines
        .find(|l| l.starts_with('#'))
        .ok_or_else(|| format!("no header in {answer:?}"))?;
    let columns: Vec<&str> = header.trim_start_matches('#').split_whitespace().collect();
    let at = |name: &str| {
        columns
            .iter()
            .position(|c| *c == name)
            .ok_or_else(|| format!("no column {name}"))
    };
    let (name, addr, port) = (at("srv_name")?, at("srv_addr")?, at("srv_port")?);
    let mut servers = Vec::new();
    for row in lines.filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = row.split_whitespace().collect();
        let field = |i: usize| {
            fields
                .get(i)
                .copied()
                .ok_or_else(|| format!("short row {row:?}"))
        };
        servers.push(Server {
            name: field(name)?.to_string(),
            addr: field(addr)?.to_string(),
            port: field(port)?
                .parse()
                .map_err(|_| format!("bad port in {row:?}"))?,
        });
    }
    Ok(servers)
}

/// Finds `scur` for one server in `show stat`'s CSV.
fn parse_sessions(csv: &str, backend: &str, server: &str) -> Result<u64, String> {
    let mut lines = csv.lines();
    let header = lines.next().ok_or("`show stat` answered nothing")?;
    let columns: Vec<&str> = header.trim_start_matches("# ").split(',').collect();
    let scur = columns
        .iter()
        .position(|c| *c == "scur")
        .ok_or("`show stat` has no scur")?;
    for row in lines {
        let fields: Vec<&str> = row.split(',').collect();
        if fields.first() == Some(&backend) && fields.get(1) == Some(&server) {
            return fields
                .get(scur)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("`show stat`: bad scur in {row:?}"));
        }
    }
    Err(format!("`show stat`: no server {backend}/{server}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_state() {
        let answer = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n\
3 web 1 n1 127.0.0.1 2 0 1 1 2 1 0 2 6 0 0 0 - 18091 - 0 0 - - 0\n";
        assert_eq!(
            parse_servers_state(answer),
            Ok(vec![Server {
                name: "n1".into(),
                addr: "127.0.0.1".into(),
                port: 18091
            }])
        );
        assert_eq!(
            parse_servers_state("1\n# be_id srv_name srv_addr srv_port\n"),
            Ok(vec![])
        );
    }

    #[test]
    fn sessions_of_one_server() {
        let csv = "# pxname,svname,qcur,qmax,scur,smax\nfe,FRONTEND,,,4,9\nweb,n1,0,0,2,5\nweb,BACKEND,0,0,2,5\n";
        assert_eq!(parse_sessions(csv, "web", "n1"), Ok(2));
        assert!(parse_sessions(csv, "web", "n2").is_err());
    }
}
