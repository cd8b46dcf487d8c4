//! Control: the two ends of the control socket, which lets people and scripts ask the
//! running pidvisor for a status, a start, a stop, a restart, a signal, a wait, a
//! shutdown or its event stream.
//!
//! [`protocol`] is what both ends agree on (one JSON object per line each way);
//! [`server`] is pidvisor's side, the connection work only (accept, bounded buffers,
//! timeouts), served by the supervisor's loop; [`client`] is `pidvisorctl`, the same
//! binary under another name.
//!
//! What a request does is the supervisor's business, not this layer's. It may use
//! [`crate::services`] (the names of states), [`crate::output`], [`crate::init`] and
//! [`crate::duration`], and nothing above.

pub mod client;
pub mod protocol;
pub mod server;
