//! Membership events as Serf names them, the unit handed to event handlers.

use std::fmt;

use crate::identity::NodeId;

/// The four member events of Serf that this agent fires (no user events or queries).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum EventKind {
    Join,
    Leave,
    Failed,
    Update,
}

impl EventKind {
    pub const ALL: [EventKind; 4] = [
        EventKind::Join,
        EventKind::Leave,
        EventKind::Failed,
        EventKind::Update,
    ];

    /// The name in `SERF_EVENT` and in handler filters.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Join => "member-join",
            EventKind::Leave => "member-leave",
            EventKind::Failed => "member-failed",
            EventKind::Update => "member-update",
        }
    }

    pub fn from_name(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

/// One event and the members it concerns (one line each on the handler's stdin).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub members: Vec<NodeId>,
}

impl Event {
    pub fn new(kind: EventKind, member: NodeId) -> Event {
        Event {
            kind,
            members: vec![member],
        }
    }

    /// Folds events of the same kind into one, keeping their first-seen order, as Serf
    /// coalesces the events of a short window into one handler run per kind.
    pub fn coalesce(events: Vec<Event>) -> Vec<Event> {
        let mut folded: Vec<Event> = Vec::new();
        for event in events {
            match folded.iter_mut().find(|seen| seen.kind == event.kind) {
                Some(seen) => seen.members.extend(event.members),
                None => folded.push(event),
            }
        }
        folded
    }

    /// The handler's stdin: `NAME<TAB>IP<TAB>ROLE<TAB>k=v,k=v`, one line per member, with
    /// tabs and newlines inside values escaped as `\t` and `\n` (as Serf does).
    pub fn stdin_lines(&self) -> String {
        let mut lines = String::new();
        for member in &self.members {
            let tags: Vec<String> = member
                .tags
                .iter()
                .map(|(key, value)| format!("{}={}", clean(key), clean(value)))
                .collect();
            lines.push_str(&format!(
                "{}\t{}\t{}\t{}\n",
                clean(&member.name),
                member.addr.ip(),
                clean(member.role()),
                tags.join(",")
            ));
        }
        lines
    }
}

fn clean(text: &str) -> String {
    text.replace('\t', "\\t").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::net::SocketAddr;

    fn node(name: &str, last_octet: u8, tags: &[(&str, &str)]) -> NodeId {
        let tags: BTreeMap<String, String> = tags
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        NodeId::local(
            SocketAddr::from(([10, 0, 0, last_octet], 7946)),
            name.into(),
            tags,
        )
    }

    #[test]
    fn stdin_has_one_serf_line_per_member() {
        let event = Event {
            kind: EventKind::Join,
            members: vec![
                node("web1", 2, &[("role", "web"), ("port", "8080")]),
                node("lb", 3, &[]),
            ],
        };
        assert_eq!(
            event.stdin_lines(),
            "web1\t10.0.0.2\tweb\tport=8080,role=web\nlb\t10.0.0.3\t\t\n"
        );
    }

    #[test]
    fn tabs_in_values_are_escaped() {
        let event = Event::new(EventKind::Update, node("a\tb", 2, &[("k", "x\ny")]));
        assert_eq!(event.stdin_lines(), "a\\tb\t10.0.0.2\t\tk=x\\ny\n");
    }

    #[test]
    fn events_of_a_kind_are_coalesced_in_order() {
        let folded = Event::coalesce(vec![
            Event::new(EventKind::Join, node("a", 1, &[])),
            Event::new(EventKind::Failed, node("b", 2, &[])),
            Event::new(EventKind::Join, node("c", 3, &[])),
        ]);
        assert_eq!(folded.len(), 2);
        assert_eq!(folded[0].kind, EventKind::Join);
        let names: Vec<&str> = folded[0].members.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["a", "c"]);
    }
}
