//! A node's identity in the cluster: what foca gossips about each member.
//!
//! Besides the address foca sends to, it carries the node's name and tags (so every member
//! learns them with the membership itself, no second protocol) and a `bump` that tells two
//! incarnations of the same address apart: a restarted agent, or one that renewed itself
//! after being wrongly declared down, always has the higher bump and wins the address.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// One member as foca knows it. Tags are sorted by key (they come from a map), so that two
/// identities with the same tags compare equal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeId {
    pub addr: SocketAddr,
    pub name: String,
    pub tags: Vec<(String, String)>,
    pub bump: u64,
}

impl NodeId {
    /// This node's identity at start-up: the bump is the time in milliseconds, so that an
    /// agent restarted on the same address replaces its previous incarnation.
    pub fn local(addr: SocketAddr, name: String, tags: BTreeMap<String, String>) -> NodeId {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_millis());
        NodeId {
            addr,
            name,
            tags: tags.into_iter().collect(),
            bump: u64::try_from(millis).unwrap_or(u64::MAX),
        }
    }

    /// A stand-in for a seed whose identity we do not know yet: foca accepts an announce
    /// addressed to any identity with its own address.
    pub fn seed(addr: SocketAddr) -> NodeId {
        NodeId {
            addr,
            name: String::new(),
            tags: Vec::new(),
            bump: 0,
        }
    }

    /// The value of tag `key`, if set.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    }

    /// The `role` tag, or "" (what Serf passes when a node has none).
    pub fn role(&self) -> &str {
        self.tag("role").unwrap_or("")
    }
}

impl foca::Identity for NodeId {
    type Addr = SocketAddr;

    fn renew(&self) -> Option<Self> {
        Some(NodeId {
            bump: self.bump.wrapping_add(1),
            ..self.clone()
        })
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        self.bump > adversary.bump
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use foca::Identity;

    fn address() -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], 7946))
    }

    #[test]
    fn the_role_is_a_tag_and_empty_without_one() {
        let tags = BTreeMap::from([("role".to_string(), "web".to_string())]);
        assert_eq!(NodeId::local(address(), "a".into(), tags).role(), "web");
        assert_eq!(
            NodeId::local(address(), "a".into(), BTreeMap::new()).role(),
            ""
        );
    }

    #[test]
    fn a_renewed_identity_wins_its_address() {
        let id = NodeId::local(address(), "a".into(), BTreeMap::new());
        let renewed = id.renew().unwrap();
        assert_eq!(renewed.addr(), id.addr());
        assert!(renewed.win_addr_conflict(&id));
        assert!(!id.win_addr_conflict(&renewed));
    }
}
