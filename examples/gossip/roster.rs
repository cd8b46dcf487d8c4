//! The agent's view of the cluster: every member it has seen, with Serf's status
//! (alive, left, failed), and the events each change of that view fires.
//!
//! foca only knows "up" and "down"; a member that said goodbye first (a leave notice,
//! see `wire.rs`) is recorded as left, so that its "down" that follows is not a failure.
//! Pure bookkeeping: no I/O, so every transition is unit-tested.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::events::{Event, EventKind};
use crate::identity::NodeId;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Alive,
    Left,
    Failed,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Alive => "alive",
            Status::Left => "left",
            Status::Failed => "failed",
        }
    }
}

struct Entry {
    id: NodeId,
    status: Status,
}

pub struct Roster {
    local: NodeId,
    others: BTreeMap<SocketAddr, Entry>,
}

/// One line of `gossip members`, also its JSON form.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberView {
    pub name: String,
    pub addr: SocketAddr,
    pub status: Status,
    pub tags: BTreeMap<String, String>,
}

impl Roster {
    pub fn new(local: NodeId) -> Roster {
        Roster {
            local,
            others: BTreeMap::new(),
        }
    }

    /// The local identity changed (foca renewed it after a false "down").
    pub fn set_local(&mut self, local: NodeId) {
        self.local = local;
    }

    pub fn member_up(&mut self, id: NodeId) -> Option<Event> {
        let entry = Entry {
            id: id.clone(),
            status: Status::Alive,
        };
        match self.others.insert(id.addr, entry) {
            Some(previous) if previous.status == Status::Alive && previous.id == id => None,
            _ => Some(Event::new(EventKind::Join, id)),
        }
    }

    /// foca declared a member down: a failure, unless it told us it was leaving.
    pub fn member_down(&mut self, id: NodeId) -> Option<Event> {
        let entry = self.others.get_mut(&id.addr)?;
        if entry.id != id || entry.status != Status::Alive {
            return None;
        }
        entry.status = Status::Failed;
        Some(Event::new(EventKind::Failed, id))
    }

    /// A member said it is leaving: only believed for the identity we know alive.
    pub fn leave_notice(&mut self, id: NodeId) -> Option<Event> {
        let entry = self.others.get_mut(&id.addr)?;
        if entry.id != id || entry.status != Status::Alive {
            return None;
        }
        entry.status = Status::Left;
        Some(Event::new(EventKind::Leave, id))
    }

    /// foca replaced a member's identity by a newer one at the same address. When both
    /// are alive that is an update (Serf's member-update, when name or tags changed);
    /// when the new one comes back from the dead, foca follows with a `member_up`.
    pub fn rename(&mut self, before: NodeId, after: NodeId) -> Option<Event> {
        let entry = self.others.get_mut(&before.addr)?;
        let changed = entry.id.name != after.name || entry.id.tags != after.tags;
        entry.id = after.clone();
        (entry.status == Status::Alive && changed).then(|| Event::new(EventKind::Update, after))
    }

    /// The members we know alive, to say goodbye to.
    pub fn alive(&self) -> impl Iterator<Item = &NodeId> {
        self.others
            .values()
            .filter(|entry| entry.status == Status::Alive)
            .map(|entry| &entry.id)
    }

    /// Every member, the local node first.
    pub fn view(&self) -> Vec<MemberView> {
        let local = (&self.local, Status::Alive);
        std::iter::once(local)
            .chain(self.others.values().map(|entry| (&entry.id, entry.status)))
            .map(|(id, status)| MemberView {
                name: id.name.clone(),
                addr: id.addr,
                status,
                tags: id.tags.iter().cloned().collect(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, last_octet: u8, bump: u64) -> NodeId {
        NodeId {
            addr: SocketAddr::from(([10, 0, 0, last_octet], 7946)),
            name: name.into(),
            tags: vec![("role".into(), "web".into())],
            bump,
        }
    }

    fn kind(event: Option<Event>) -> Option<EventKind> {
        event.map(|event| event.kind)
    }

    fn roster() -> Roster {
        Roster::new(node("self", 1, 1))
    }

    #[test]
    fn up_then_down_is_a_join_then_a_failure() {
        let mut roster = roster();
        assert_eq!(
            kind(roster.member_up(node("a", 2, 1))),
            Some(EventKind::Join)
        );
        assert_eq!(
            kind(roster.member_down(node("a", 2, 1))),
            Some(EventKind::Failed)
        );
        assert_eq!(roster.view()[1].status, Status::Failed);
    }

    #[test]
    fn a_leave_notice_turns_the_following_down_into_nothing() {
        let mut roster = roster();
        roster.member_up(node("a", 2, 1));
        assert_eq!(
            kind(roster.leave_notice(node("a", 2, 1))),
            Some(EventKind::Leave)
        );
        assert_eq!(kind(roster.member_down(node("a", 2, 1))), None);
        assert_eq!(roster.view()[1].status, Status::Left);
        assert_eq!(roster.alive().count(), 0);
    }

    #[test]
    fn a_leave_notice_for_another_incarnation_is_ignored() {
        let mut roster = roster();
        roster.member_up(node("a", 2, 2));
        assert_eq!(kind(roster.leave_notice(node("a", 2, 1))), None);
        assert_eq!(kind(roster.leave_notice(node("b", 3, 1))), None);
        assert_eq!(roster.view()[1].status, Status::Alive);
    }

    #[test]
    fn a_member_back_after_failing_joins_again() {
        let mut roster = roster();
        roster.member_up(node("a", 2, 1));
        roster.member_down(node("a", 2, 1));
        assert_eq!(kind(roster.rename(node("a", 2, 1), node("a", 2, 2))), None);
        assert_eq!(
            kind(roster.member_up(node("a", 2, 2))),
            Some(EventKind::Join)
        );
        assert_eq!(roster.view()[1].status, Status::Alive);
    }

    #[test]
    fn a_rename_with_new_tags_is_an_update() {
        let mut roster = roster();
        roster.member_up(node("a", 2, 1));
        let mut retagged = node("a", 2, 2);
        retagged.tags.push(("zone".into(), "b".into()));
        assert_eq!(
            kind(roster.rename(node("a", 2, 1), retagged)),
            Some(EventKind::Update)
        );
        assert_eq!(
            kind(roster.rename(node("a", 2, 2), node("a", 2, 3))),
            Some(EventKind::Update)
        );
        assert_eq!(kind(roster.rename(node("a", 2, 3), node("a", 2, 4))), None);
    }

    #[test]
    fn the_view_lists_the_local_node_first() {
        let mut roster = roster();
        roster.member_up(node("a", 2, 1));
        let names: Vec<String> = roster.view().into_iter().map(|m| m.name).collect();
        assert_eq!(names, ["self", "a"]);
    }
}
