//! Integration tests of the `gossip` example (examples/gossip/): real agents on a private
//! LAN of network namespaces, each agent the main command of its own pidvisor running as
//! PID 1 of its own PID namespace, as in a container.
//!
//! What they prove from the outside: the members converge (`gossip members`), a crash is
//! `member-failed` and a graceful stop `member-leave` at every other member, within
//! measured times; a handler gets Serf's environment and stdin; an agent started before
//! its seed joins once the seed is up, and says it is ready only then; bad command lines
//! exit 2 with a message. Propagation times are printed (`--nocapture` shows them).
//!
//! Needs root (network namespaces), iproute2 and util-linux's `unshare`.

#[path = "../common/harness.rs"]
mod harness;
mod network;
mod node;

mod bad_input;
mod handlers;
mod membership;
mod readiness;
