//! What the request handlers share: who this node is, its counters, whether it drains, and
//! the memory `/leak` keeps.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

pub struct App {
    /// The name shown on `/`: `--node`, or the hostname.
    pub node: String,
    /// The address shown on `/` (see [`crate::node::address`]).
    pub address: IpAddr,
    pub started: Instant,
    /// How many times `/` has been served.
    page_views: AtomicU64,
    /// Set at the first SIGTERM or SIGINT: `/health` answers 503 from then on.
    draining: AtomicBool,
    pub in_flight: Arc<InFlight>,
    /// Blocks allocated by `/leak`, kept until the process ends.
    pub leaked: Mutex<Vec<Vec<u8>>>,
}

impl App {
    pub fn new(node: String, address: IpAddr) -> App {
        App {
            node,
            address,
            started: Instant::now(),
            page_views: AtomicU64::new(0),
            draining: AtomicBool::new(false),
            in_flight: Arc::new(InFlight::default()),
            leaked: Mutex::new(Vec::new()),
        }
    }

    /// Counts one more view of `/` and returns the count, this one included.
    pub fn count_page_view(&self) -> u64 {
        self.page_views.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}

/// Requests being handled right now; the graceful stop waits until there are none.
#[derive(Default)]
pub struct InFlight {
    count: Mutex<usize>,
    idle: Condvar,
}

/// One request in flight, until it is dropped.
pub struct Ticket(Arc<InFlight>);

impl InFlight {
    /// A ticket for one more request, or `None` when `limit` requests are in flight.
    pub fn enter(self: &Arc<Self>, limit: usize) -> Option<Ticket> {
        let mut count = self.lock();
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(Ticket(Arc::clone(self)))
    }

    pub fn count(&self) -> usize {
        *self.lock()
    }

    pub fn wait_until_idle(&self) {
        let mut count = self.lock();
        while *count > 0 {
            count = self
                .idle
                .wait(count)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// The count stays right even if a handler panicked while holding the lock.
    fn lock(&self) -> MutexGuard<'_, usize> {
        self.count.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut count = self.0.lock();
        *count -= 1;
        if *count == 0 {
            self.0.idle.notify_all();
        }
    }
}
