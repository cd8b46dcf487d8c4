//! The example cluster (`examples/cluster/`): its images built unchanged, brought up with
//! `docker-compose` and deployed as a Swarm stack, as the README shows.
//!
//! - `compose`: a load balancer, a collector and web nodes scaled from 3 to 5; under a
//!   steady request loop one node is killed and one stopped. HAProxy's server list must
//!   follow within seconds, the loop may lose only requests in flight to the killed node
//!   (none to the stopped one, which drains), and the collector must hold every request
//!   line of the nodes that were not killed, exactly once. The figures are printed.
//! - `swarm`: the same file as a stack on a single-node swarm made for the test; scaled
//!   to 5 web nodes, the load balancer follows. The swarm is always left afterwards.
//!
//! Needs a Docker engine with `docker-compose` (v1.29), debootstrap (the base image, see
//! tests/containers/) and the release binaries (built on first use). Without an engine
//! both tests pass after "skipped: no Docker engine"; with `CI=true` they fail. They run
//! one at a time (a lock): both measure time, and the swarm must not see the Compose
//! project's containers come and go.

#[allow(dead_code)] // shared with the other test targets
#[path = "../common/build_dir.rs"]
mod build_dir;
#[allow(dead_code)] // shared with tests/containers, which uses all of it
#[path = "../containers/docker.rs"]
mod docker;

mod collector;
mod compose;
mod images;
mod lb;
mod load;
mod swarm;
mod wait;

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Held by each test for its whole run: the cluster tests never overlap.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}
