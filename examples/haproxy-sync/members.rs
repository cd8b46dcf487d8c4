//! The members of a gossip event, as Serf hands them to a handler on stdin:
//! `NAME<TAB>IP<TAB>ROLE<TAB>k=v,k=v`, one line each.

use tracing::warn;

/// A member that is (or was) one of the backend's servers.
#[derive(Debug, PartialEq)]
pub struct Member {
    /// The node name, made into a valid HAProxy server name.
    pub server: String,
    pub ip: String,
    pub port: u16,
}

/// The members of `role`, with their port from the `port` tag (else `default_port`).
/// Lines that do not parse are logged and skipped.
pub fn parse(input: &str, role: &str, default_port: u16) -> Vec<Member> {
    let mut members = Vec::new();
    for line in input.lines().filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split('\t').collect();
        let (name, ip) = match fields.as_slice() {
            [name, ip, ..] if !name.is_empty() && !ip.is_empty() => (*name, *ip),
            _ => {
                warn!("skipping a member line that is not NAME<TAB>IP<TAB>ROLE<TAB>TAGS: {line:?}");
                continue;
            }
        };
        if fields.get(2).copied().unwrap_or("") != role {
            continue;
        }
        let tags = fields.get(3).copied().unwrap_or("");
        let port = match tag(tags, "port") {
            None => default_port,
            Some(p) => match p.parse() {
                Ok(port) => port,
                Err(_) => {
                    warn!("member {name}: tag port={p:?} is not a port number; skipped");
                    continue;
                }
            },
        };
        members.push(Member {
            server: server_name(name),
            ip: ip.to_string(),
            port,
        });
    }
    members
}

fn tag<'a>(tags: &'a str, key: &str) -> Option<&'a str> {
    tags.split(',')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

/// HAProxy accepts letters, digits and `-_.:` in a server name.
fn server_name(node: &str) -> String {
    node.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.:".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_of_the_role_with_their_port() {
        let input = "web1\t10.0.0.2\tweb\tport=8081,zone=a\n\
                     lb\t10.0.0.9\tlb\t\n\
                     web 2\t10.0.0.3\tweb\n\
                     broken line\n";
        assert_eq!(
            parse(input, "web", 8080),
            vec![
                Member {
                    server: "web1".into(),
                    ip: "10.0.0.2".into(),
                    port: 8081
                },
                Member {
                    server: "web_2".into(),
                    ip: "10.0.0.3".into(),
                    port: 8080
                },
            ]
        );
    }

    #[test]
    fn a_bad_port_tag_skips_the_member() {
        assert!(parse("w\t10.0.0.2\tweb\tport=http\n", "web", 8080).is_empty());
    }
}
