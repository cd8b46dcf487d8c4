//! The PID 1 duties: the operating-system work that any init must do, whatever it runs.
//!
//! Taking signals before anything else and sending them ([`signals`]), starting a child
//! with a clean signal state, its own process group, credentials and descriptors
//! ([`spawn`], [`pipe`]), reaping every exit, orphans included ([`reaper`]), signalling
//! every process left at the end ([`sweep`]), the open-files limit ([`limits`]), a
//! cgroup per service where the kernel allows one ([`cgroup`]), the cgroup's OOM-kill
//! count ([`oom`]), sd_notify datagrams to the host ([`notify`]), and giving back the
//! binary's pages that start-up used ([`resident`]).
//!
//! These are tools: nothing here decides when to use them; the supervisor does. This is
//! the bottom layer: it uses only the standard library, `libc` and `nix`.

pub mod cgroup;
pub mod limits;
pub mod notify;
pub mod oom;
pub mod pipe;
pub mod raw;
pub mod reaper;
pub mod resident;
pub mod shebang;
pub mod signals;
pub mod spawn;
pub mod sweep;
