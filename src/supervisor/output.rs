//! Service output and pidvisor's own log lines reaching a stdout or stderr that may stall.
//!
//! The relays ([`crate::output::logs`]) and the outlets ([`crate::output::outlet`]) never block; this
//! file keeps the event loop's interest in them true after every round: a relay whose
//! backlog is full is not read (its service blocks on its full pipe), nor one whose pipe
//! has no writer left (until the service's next run), and an outlet that
//! holds or is owed lines is watched for writability, and only then (so that an idle
//! pidvisor is not woken). When an outlet becomes writable, it gets its own carry and log
//! lines first, then every relay's backlog, taking turns so that no service starves.
//! At exit, pidvisor waits up to its grace time for a stalled stream to take the rest.

use std::os::fd::{AsFd, BorrowedFd, RawFd};
use std::time::Instant;

use nix::sys::epoll::{EpollEvent, EpollFlags};
use tracing::warn;

use super::state::{STDERR, STDOUT, Supervisor, token};
use crate::output::logs::LineRelay;
use crate::output::outlet::{self, Sink};

/// Outlet tokens in the epoll set: this bit plus the sink's number (slot tokens are far
/// below it, the control socket's have the top bit).
pub(super) const OUTLET_BIT: u64 = 1 << 62;

pub(super) fn owns_token(token: u64) -> bool {
    token & OUTLET_BIT != 0
}

fn outlet_token(sink: Sink) -> u64 {
    OUTLET_BIT
        | match sink {
            Sink::Stdout => 0,
            Sink::Stderr => 1,
        }
}

fn sink_of_token(token: u64) -> Sink {
    if token & 1 == 0 {
        Sink::Stdout
    } else {
        Sink::Stderr
    }
}

impl Supervisor {
    /// An outlet has become writable: give it what waits, then update the interests.
    pub(super) fn on_outlet_writable(&mut self, token: u64) {
        self.flush_sink(sink_of_token(token));
        self.sync_output();
    }

    /// After every round of the loop: reading paused exactly for full relays, outlets
    /// watched exactly while lines wait for them, dropped log lines reported.
    pub(super) fn sync_output(&mut self) {
        for index in 0..self.slots.len() {
            self.sync_relay_reading(index);
        }
        for sink in outlet::outlets() {
            self.sync_outlet_watch(sink);
        }
        self.report_dropped_log_lines();
    }

    /// Waits (until `deadline` at most) for stalled outlets to take every line still
    /// waiting, reading the pipes to their end meanwhile; reports what is lost.
    pub(super) fn flush_before_exit(&mut self, deadline: Instant) {
        loop {
            for index in 0..self.slots.len() {
                self.drain_output(index);
            }
            for sink in outlet::outlets() {
                self.flush_sink(sink);
            }
            let stalled: Vec<RawFd> = outlet::outlets()
                .filter(|&sink| self.sink_has_pending(sink))
                .map(|sink| outlet::lock(sink).raw_fd())
                .collect();
            if stalled.is_empty() {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.report_lost_output();
                return;
            }
            wait_writable(&stalled, left.as_millis().min(i32::MAX as u128) as i32);
        }
    }

    fn flush_sink(&mut self, sink: Sink) {
        if let Err(err) = outlet::lock(sink).flush_own() {
            warn!("writing to {sink}: {err}");
        }
        let count = self.slots.len();
        let first = self.output_turn % count.max(1);
        self.output_turn = self.output_turn.wrapping_add(1);
        for index in (first..count).chain(0..first) {
            let slot = &mut self.slots[index];
            let name = slot.service.name();
            for relay in relays(&mut slot.stdout, &mut slot.stderr, sink) {
                match relay.flush() {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(err) => warn!("{name}: relaying output: {err}"),
                }
            }
        }
    }

    fn sink_has_pending(&self, sink: Sink) -> bool {
        outlet::lock(sink).has_own_pending()
            || self.slots.iter().any(|slot| {
                [&slot.stdout, &slot.stderr]
                    .into_iter()
                    .flatten()
                    .any(|relay| outlet::route(relay.sink()) == sink && relay.has_backlog())
            })
    }

    /// Adds a relay's pipe to the epoll set or takes it out, as it wants reading (see
    /// [`LineRelay::wants_reading`]): taken out, not merely asked for nothing, since
    /// epoll reports a hang-up whatever it was asked for.
    fn sync_relay_reading(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        for (relay, kind) in [(&mut slot.stdout, STDOUT), (&mut slot.stderr, STDERR)] {
            let Some(relay) = relay else {
                continue;
            };
            let watch = relay.wants_reading();
            if watch == relay.watched {
                continue;
            }
            let result = if watch {
                self.epoll.add(
                    relay.as_fd(),
                    EpollEvent::new(EpollFlags::EPOLLIN, token(index, kind)),
                )
            } else {
                self.epoll.delete(relay.as_fd())
            };
            match result {
                Ok(()) => relay.watched = watch,
                Err(err) => warn!("{}: epoll_ctl(service pipe): {err}", slot.service.name()),
            }
        }
    }

    fn sync_outlet_watch(&mut self, sink: Sink) {
        let pending = self.sink_has_pending(sink);
        let (armed, can_stall, fd) = {
            let outlet = outlet::lock(sink);
            (outlet.armed, outlet.can_stall(), outlet.raw_fd())
        };
        if pending == armed || !can_stall {
            return;
        }
        // SAFETY: the outlet's descriptor stays open for pidvisor's whole life.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let result = if pending {
            self.epoll.add(
                fd,
                EpollEvent::new(EpollFlags::EPOLLOUT, outlet_token(sink)),
            )
        } else {
            self.epoll.delete(fd)
        };
        match result {
            Ok(()) => outlet::lock(sink).armed = pending,
            Err(err) => warn!("epoll_ctl({sink}): {err}"),
        }
    }

    fn report_dropped_log_lines(&self) {
        if outlet::lock(Sink::Stderr).has_own_pending() {
            return;
        }
        let dropped = outlet::take_dropped_log_lines();
        if dropped > 0 {
            warn!("{dropped} of pidvisor's own log lines were dropped: stderr was not being read");
        }
    }

    fn report_lost_output(&self) {
        let lost: usize = outlet::outlets()
            .map(|sink| outlet::lock(sink).own_pending_len())
            .sum::<usize>()
            + self
                .slots
                .iter()
                .flat_map(|slot| [&slot.stdout, &slot.stderr])
                .flatten()
                .map(LineRelay::backlog_len)
                .sum::<usize>();
        warn!("exiting with {lost} bytes of output unwritten: stdout or stderr was not being read");
    }
}

/// The relays of one slot that write to `sink`.
fn relays<'a>(
    stdout: &'a mut Option<LineRelay>,
    stderr: &'a mut Option<LineRelay>,
    sink: Sink,
) -> impl Iterator<Item = &'a mut LineRelay> {
    [stdout, stderr]
        .into_iter()
        .flatten()
        .filter(move |relay| outlet::route(relay.sink()) == sink)
}

/// Waits until one of `fds` is writable (or broken), or `millis` have passed.
fn wait_writable(fds: &[RawFd], millis: i32) {
    let mut polls: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLOUT,
            revents: 0,
        })
        .collect();
    // SAFETY: polls is a valid array of polls.len() entries.
    unsafe { libc::poll(polls.as_mut_ptr(), polls.len() as libc::nfds_t, millis) };
}
