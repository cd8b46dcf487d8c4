//! Keeps HAProxy's config file in step with the runtime: the lines between the two marker
//! lines are replaced by one `server` line per server the backend has now, so that a
//! restart of HAProxy (whose runtime changes are lost) rebuilds the same set.
//!
//! ```text
//! backend web
//!     # haproxy-sync: begin (generated: do not edit)
//!     server web-1 10.0.1.5:8080 check
//!     # haproxy-sync: end
//! ```

use std::fs;
use std::path::Path;

use crate::runtime::Server;

const BEGIN: &str = "# haproxy-sync: begin";
const END: &str = "# haproxy-sync: end";

/// Rewrites `path` atomically (a temporary file renamed over it).
pub fn rewrite(path: &Path, servers: &[Server]) -> Result<(), String> {
    let text =
        fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let new = replace_block(&text, servers).ok_or_else(|| {
        format!(
            "{}: no '{BEGIN}' line followed by an '{END}' line: add both to the backend",
            path.display()
        )
    })?;
    let temporary = path.with_extension("haproxy-sync.tmp");
    fs::write(&temporary, new)
        .and_then(|()| fs::rename(&temporary, path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn replace_block(text: &str, servers: &[Server]) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let begin = lines
        .iter()
        .position(|l| l.trim_start().starts_with(BEGIN))?;
    let end = begin
        + lines[begin..]
            .iter()
            .position(|l| l.trim_start().starts_with(END))?;
    let indent = &lines[begin][..lines[begin].len() - lines[begin].trim_start().len()];
    let mut out: Vec<String> = lines[..=begin].iter().map(|l| l.to_string()).collect();
    for s in servers {
        out.push(format!(
            "{indent}server {} {}:{} check",
            s.name, s.addr, s.port
        ));
    }
    out.extend(lines[end..].iter().map(|l| l.to_string()));
    Some(out.join("\n") + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_block_is_replaced_and_the_rest_kept() {
        let text = "backend web\n    balance roundrobin\n    # haproxy-sync: begin (generated)\n    server old 10.0.0.1:80 check\n    # haproxy-sync: end\n    option httpchk\n";
        let servers = [Server {
            name: "n1".into(),
            addr: "10.0.0.2".into(),
            port: 8080,
        }];
        assert_eq!(
            replace_block(text, &servers).as_deref(),
            Some(
                "backend web\n    balance roundrobin\n    # haproxy-sync: begin (generated)\n    server n1 10.0.0.2:8080 check\n    # haproxy-sync: end\n    option httpchk\n"
            )
        );
        assert_eq!(replace_block("backend web\n", &servers), None);
    }
}
