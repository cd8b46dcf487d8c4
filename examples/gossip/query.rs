//! `gossip members`: the agent listens on a local Unix socket and answers every connection
//! with its member list as one JSON document, then closes it. The client prints it as a
//! table (like `serf members`) or as the JSON itself.

use std::fmt::Write as _;
use std::io::{self, ErrorKind, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cli::{Format, MembersOptions};
use crate::roster::MemberView;

/// A slow or stuck client cannot hold the agent's loop longer than this.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Serialize, Deserialize)]
struct Answer {
    members: Vec<MemberView>,
}

/// The listening socket; its file is removed when dropped.
pub struct QueryServer {
    listener: UnixListener,
    path: PathBuf,
}

impl QueryServer {
    /// Binds `path`, replacing a stale socket file left by an agent that died, but never
    /// one that a running agent still answers on.
    pub fn bind(path: &Path) -> Result<QueryServer, String> {
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(format!(
                    "{}: another agent answers on this socket (stop it, or pass --socket)",
                    path.display()
                ));
            }
            std::fs::remove_file(path).map_err(|error| {
                format!("removing the stale socket {}: {error}", path.display())
            })?;
        }
        let listener = UnixListener::bind(path).map_err(|error| {
            format!(
                "cannot listen on {}: {error} (pass --socket PATH to a writable place)",
                path.display()
            )
        })?;
        listener
            .set_nonblocking(true)
            .map_err(|error| format!("{}: {error}", path.display()))?;
        Ok(QueryServer {
            listener,
            path: path.to_path_buf(),
        })
    }

    pub fn listener(&self) -> &UnixListener {
        &self.listener
    }

    /// Answers every pending connection.
    pub fn answer_all(&self, members: impl Fn() -> Vec<MemberView>) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if let Err(error) = answer(stream, members()) {
                        tracing::debug!("members query: {error}");
                    }
                }
                Err(error) if error.kind() == ErrorKind::WouldBlock => return,
                Err(error) => {
                    tracing::warn!("members query: accept: {error}");
                    return;
                }
            }
        }
    }
}

impl Drop for QueryServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn answer(mut stream: UnixStream, members: Vec<MemberView>) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let document = serde_json::to_vec(&Answer { members })?;
    stream.write_all(&document)
}

/// The `members` command.
pub fn members(options: &MembersOptions) -> Result<String, String> {
    let socket = options.socket.display();
    let mut stream = UnixStream::connect(&options.socket).map_err(|error| {
        format!("cannot reach the agent at {socket}: {error} (is it running? pass --socket)")
    })?;
    let mut document = Vec::new();
    stream
        .read_to_end(&mut document)
        .map_err(|error| format!("reading from {socket}: {error}"))?;
    let answer: Answer = serde_json::from_slice(&document)
        .map_err(|error| format!("{socket} did not answer a member list: {error}"))?;
    Ok(match options.format {
        Format::Json => {
            let mut text = serde_json::to_string_pretty(&answer)
                .map_err(|error| format!("encoding the member list: {error}"))?;
            text.push('\n');
            text
        }
        Format::Table => table(&answer.members),
    })
}

/// `NAME  ADDR  STATUS  k=v,k=v`, columns aligned.
fn table(members: &[MemberView]) -> String {
    let rows: Vec<[String; 4]> = members
        .iter()
        .map(|member| {
            let tags: Vec<String> = member
                .tags
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            [
                member.name.clone(),
                member.addr.to_string(),
                member.status.name().to_string(),
                tags.join(","),
            ]
        })
        .collect();
    let width = |column: usize| rows.iter().map(|row| row[column].len()).max().unwrap_or(0);
    let widths = [width(0), width(1), width(2)];
    let mut text = String::new();
    for row in &rows {
        let _ = writeln!(
            text,
            "{:w0$}  {:w1$}  {:w2$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
    }
    text.lines()
        .map(str::trim_end)
        .fold(String::new(), |mut out, line| {
            out.push_str(line);
            out.push('\n');
            out
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roster::Status;
    use std::collections::BTreeMap;

    #[test]
    fn the_table_aligns_columns() {
        let members = vec![
            MemberView {
                name: "lb".into(),
                addr: "10.0.0.1:7946".parse().unwrap(),
                status: Status::Alive,
                tags: BTreeMap::from([("role".to_string(), "lb".to_string())]),
            },
            MemberView {
                name: "web-1".into(),
                addr: "10.0.0.12:7946".parse().unwrap(),
                status: Status::Failed,
                tags: BTreeMap::new(),
            },
        ];
        assert_eq!(
            table(&members),
            "lb     10.0.0.1:7946   alive   role=lb\nweb-1  10.0.0.12:7946  failed\n"
        );
    }
}
