//! What travels in a UDP datagram: foca's own messages, or this agent's leave notice.
//!
//! The first byte says which. A leave notice is sent straight to every live member just
//! before foca's `leave_cluster`, so that the others tell a goodbye from a failure: foca
//! itself reports both as "member down".

use crate::identity::NodeId;

const FOCA: u8 = b'F';
const LEAVE: u8 = b'L';

/// A datagram, decoded.
#[derive(Debug, PartialEq, Eq)]
pub enum Datagram<'a> {
    Foca(&'a [u8]),
    Leave(NodeId),
}

/// Frames foca's bytes.
pub fn foca(data: &[u8]) -> Vec<u8> {
    let mut framed = Vec::with_capacity(data.len() + 1);
    framed.push(FOCA);
    framed.extend_from_slice(data);
    framed
}

/// The leave notice of `leaving` (JSON: it is sent once per member, size does not matter).
pub fn leave(leaving: &NodeId) -> Vec<u8> {
    let mut framed = vec![LEAVE];
    // Serializing a struct of strings and numbers into a Vec cannot fail.
    if serde_json::to_writer(&mut framed, leaving).is_err() {
        framed.truncate(1);
    }
    framed
}

/// Decodes a datagram; `None` for anything else (it came from the network: never trusted).
pub fn decode(datagram: &[u8]) -> Option<Datagram<'_>> {
    match datagram.split_first()? {
        (&FOCA, rest) => Some(Datagram::Foca(rest)),
        (&LEAVE, rest) => serde_json::from_slice(rest).ok().map(Datagram::Leave),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    #[test]
    fn frames_round_trip() {
        let id = NodeId {
            addr: SocketAddr::from(([10, 0, 0, 2], 7946)),
            name: "web1".into(),
            tags: vec![("role".into(), "web".into())],
            bump: 7,
        };
        assert_eq!(decode(&leave(&id)), Some(Datagram::Leave(id)));
        assert_eq!(decode(&foca(b"abc")), Some(Datagram::Foca(b"abc")));
    }

    #[test]
    fn garbage_is_refused() {
        assert_eq!(decode(b""), None);
        assert_eq!(decode(b"Lnot json"), None);
        assert_eq!(decode(b"?"), None);
    }
}
