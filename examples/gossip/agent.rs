//! The agent: one thread, one loop. It sleeps in poll(2) on three descriptors (the UDP
//! socket, the members-query socket, the signal pipe) until the earliest deadline (a foca
//! timer or the next join attempt), handles what is ready, fires what is due, and pushes
//! everything foca asked for (datagrams, timers, notifications) out before sleeping again.
//!
//! Error policy: before the loop, fail (the caller exits 1); inside it, a bad datagram or
//! a failed send is logged and the protocol carries on, since SWIM tolerates loss.

use std::io::{self, ErrorKind, Read};
use std::net::{SocketAddr, UdpSocket};
use std::num::NonZeroU32;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use foca::{
    AccumulatingRuntime, Config, Foca, NoCustomBroadcast, OwnedNotification, PostcardCodec, Timer,
};
use rand::rngs::StdRng;

use crate::address;
use crate::cli::AgentOptions;
use crate::events::{Event, EventKind};
use crate::handlers::Dispatcher;
use crate::identity::NodeId;
use crate::join::Joiner;
use crate::query::QueryServer;
use crate::readiness::Readiness;
use crate::roster::Roster;
use crate::timers::TimerQueue;
use crate::wire::{self, Datagram};

/// foca sizes its dissemination and suspicion by the expected cluster size; up to 10
/// nodes the LAN profile declares a silent member down 4 s after suspecting it.
const EXPECTED_CLUSTER_SIZE: u32 = 10;

/// Room for foca's largest message (1400 bytes in the LAN profile) and our framing byte.
const DATAGRAM_BUFFER: usize = 2048;

type Swim = Foca<NodeId, PostcardCodec, StdRng, NoCustomBroadcast>;

/// Runs the agent until SIGTERM or SIGINT, then leaves the cluster.
pub fn run(options: AgentOptions, readiness: Readiness) -> Result<(), String> {
    let socket = UdpSocket::bind(options.bind)
        .map_err(|error| format!("cannot listen on UDP {}: {error}", options.bind))?;
    let bound = socket
        .local_addr()
        .and_then(|bound| socket.set_nonblocking(true).map(|()| bound))
        .map_err(|error| format!("UDP socket {}: {error}", options.bind))?;
    let advertised = address::advertised(bound, options.advertise, &options.joins)?;
    let name = options.node.clone().unwrap_or_else(hostname);
    let identity = NodeId::local(advertised, name, options.tags.clone());
    let query = QueryServer::bind(&options.socket)?;
    let signals = signal_pipe()?;
    let now = Instant::now();
    let mut agent = Agent {
        foca: Foca::new(
            identity.clone(),
            lan_config(),
            rand::make_rng(),
            PostcardCodec,
        ),
        runtime: AccumulatingRuntime::new(),
        timers: TimerQueue::new(),
        roster: Roster::new(identity.clone()),
        dispatcher: Dispatcher::start(options.handlers, &identity, options.handler_timeout),
        joiner: Joiner::new(options.joins, now),
        readiness,
        socket,
    };
    tracing::info!(
        "agent {} listening on {bound}, advertising {advertised}, query socket {}",
        identity.name,
        options.socket.display()
    );
    // Serf fires member-join for the local node at start; so do we.
    agent
        .dispatcher
        .dispatch(Event::new(EventKind::Join, identity));
    if !agent.joiner.has_seeds() {
        agent.readiness.ready();
    }
    agent.serve(&query, signals)?;
    agent.leave();
    Ok(())
}

fn lan_config() -> Config {
    let size = NonZeroU32::new(EXPECTED_CLUSTER_SIZE).unwrap_or(NonZeroU32::MIN);
    Config::new_lan(size)
}

struct Agent {
    foca: Swim,
    runtime: AccumulatingRuntime<NodeId>,
    timers: TimerQueue<Timer<NodeId>>,
    roster: Roster,
    dispatcher: Dispatcher,
    joiner: Joiner,
    readiness: Readiness,
    socket: UdpSocket,
}

impl Agent {
    /// The loop, until a stop signal.
    fn serve(&mut self, query: &QueryServer, mut signals: UnixStream) -> Result<(), String> {
        let descriptors = [
            self.socket.as_raw_fd(),
            query.listener().as_raw_fd(),
            signals.as_raw_fd(),
        ];
        loop {
            let now = Instant::now();
            let deadline = [self.timers.next_due(), self.joiner.next_attempt()]
                .into_iter()
                .flatten()
                .min();
            let ready = wait_readable(
                &descriptors,
                deadline.map(|at| at.saturating_duration_since(now)),
            )
            .map_err(|error| format!("poll: {error}"))?;
            if ready[2] {
                let mut drained = [0u8; 64];
                let _ = signals.read(&mut drained);
                tracing::info!("stop signal received: leaving the cluster");
                return Ok(());
            }
            if ready[0] {
                self.receive();
            }
            if ready[1] {
                query.answer_all(|| self.roster.view());
            }
            self.fire_due_timers();
            self.try_to_join();
        }
    }

    fn receive(&mut self) {
        let mut buffer = [0u8; DATAGRAM_BUFFER];
        loop {
            let (length, from) = match self.socket.recv_from(&mut buffer) {
                Ok(received) => received,
                Err(error) if error.kind() == ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == ErrorKind::Interrupted => continue,
                Err(error) => {
                    tracing::warn!("UDP receive: {error}");
                    return;
                }
            };
            match wire::decode(&buffer[..length]) {
                Some(Datagram::Foca(data)) => {
                    if let Err(error) = self.foca.handle_data(data, &mut self.runtime) {
                        tracing::debug!("datagram from {from} refused by foca: {error}");
                    }
                }
                Some(Datagram::Leave(leaving)) => {
                    if let Some(event) = self.roster.leave_notice(leaving) {
                        self.publish(vec![event]);
                    }
                }
                None => tracing::debug!("datagram from {from} is not ours, dropped"),
            }
            self.flush();
        }
    }

    fn fire_due_timers(&mut self) {
        while let Some(timer) = self.timers.pop_due(Instant::now()) {
            if let Err(error) = self.foca.handle_timer(timer, &mut self.runtime) {
                tracing::warn!("foca timer: {error}");
            }
            self.flush();
        }
    }

    fn try_to_join(&mut self) {
        let Some(seeds) = self.joiner.attempt(Instant::now()) else {
            return;
        };
        let own = self.foca.identity().addr;
        let others: Vec<SocketAddr> = seeds.iter().copied().filter(|seed| *seed != own).collect();
        if others.is_empty() && !seeds.is_empty() {
            // The same --join everywhere names this node too: it starts the cluster.
            tracing::info!("join: the only seed is this node, it starts the cluster");
            self.joiner.joined();
            self.readiness.ready();
            return;
        }
        for seed in others {
            tracing::info!("join: announcing to {seed}");
            if let Err(error) = self.foca.announce(NodeId::seed(seed), &mut self.runtime) {
                tracing::warn!("join: announcing to {seed}: {error}");
            }
        }
        self.flush();
    }

    /// Sends, schedules and reports what foca asked for.
    fn flush(&mut self) {
        let now = Instant::now();
        while let Some((to, data)) = self.runtime.to_send() {
            self.send(&wire::foca(&data), to.addr);
        }
        while let Some((after, timer)) = self.runtime.to_schedule() {
            self.timers.schedule(now, after, timer);
        }
        let mut events = Vec::new();
        while let Some(notification) = self.runtime.to_notify() {
            events.extend(self.note(notification, now));
        }
        self.publish(events);
    }

    /// Turns a foca notification into the roster's event, if any.
    fn note(&mut self, notification: OwnedNotification<NodeId>, now: Instant) -> Option<Event> {
        match notification {
            OwnedNotification::MemberUp(member) => {
                self.joined();
                self.roster.member_up(member)
            }
            OwnedNotification::MemberDown(member) => self.roster.member_down(member),
            OwnedNotification::Rename(before, after) => self.roster.rename(before, after),
            OwnedNotification::Active => {
                self.joined();
                None
            }
            OwnedNotification::Idle => {
                if self.joiner.has_seeds() {
                    tracing::warn!("no other member is alive: joining through the seeds again");
                    self.joiner.start_again(now);
                }
                None
            }
            OwnedNotification::Rejoin(renewed) => {
                tracing::warn!(
                    "the cluster declared this node down; rejoined as incarnation {}",
                    renewed.bump
                );
                self.roster.set_local(renewed);
                None
            }
            OwnedNotification::Defunct => {
                tracing::error!("the cluster declared this node down and it cannot rejoin");
                None
            }
        }
    }

    fn joined(&mut self) {
        if self.joiner.next_attempt().is_some() {
            tracing::info!("joined the cluster");
        }
        self.joiner.joined();
        self.readiness.ready();
    }

    fn publish(&mut self, events: Vec<Event>) {
        for event in Event::coalesce(events) {
            for member in &event.members {
                tracing::info!("{} {} {}", event.kind, member.name, member.addr);
            }
            self.dispatcher.dispatch(event);
        }
    }

    fn send(&self, datagram: &[u8], to: SocketAddr) {
        if let Err(error) = self.socket.send_to(datagram, to) {
            tracing::debug!("UDP send to {to}: {error}");
        }
    }

    /// Says goodbye: a leave notice to every live member first, so that they report a
    /// leave rather than a failure, then foca's own leave (its "down" gossip).
    fn leave(mut self) {
        let notice = wire::leave(self.foca.identity());
        let alive: Vec<SocketAddr> = self.roster.alive().map(|member| member.addr).collect();
        for member in &alive {
            self.send(&notice, *member);
        }
        if let Err(error) = self.foca.leave_cluster(&mut self.runtime) {
            tracing::warn!("leaving the cluster: {error}");
        }
        while let Some((to, data)) = self.runtime.to_send() {
            self.send(&wire::foca(&data), to.addr);
        }
        tracing::info!("left the cluster ({} members told)", alive.len());
        self.dispatcher.stop();
    }
}

/// A socket that becomes readable when SIGTERM or SIGINT arrives (signal-hook writes a
/// byte to it from the handler).
fn signal_pipe() -> Result<UnixStream, String> {
    let (read_end, write_end) =
        UnixStream::pair().map_err(|error| format!("signal pipe: {error}"))?;
    read_end
        .set_nonblocking(true)
        .map_err(|error| format!("signal pipe: {error}"))?;
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        let writer = write_end
            .try_clone()
            .map_err(|error| format!("signal pipe: {error}"))?;
        signal_hook::low_level::pipe::register(signal, writer)
            .map_err(|error| format!("registering signal {signal}: {error}"))?;
    }
    Ok(read_end)
}

/// poll(2) for readability; `None` waits without a deadline. A signal interrupting the
/// wait is not an error: the caller just looks again.
fn wait_readable<const N: usize>(
    descriptors: &[RawFd; N],
    timeout: Option<Duration>,
) -> io::Result<[bool; N]> {
    let mut polled = descriptors.map(|fd| libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    });
    let milliseconds = match timeout {
        // Round up: waking a little early would only spin until the deadline.
        Some(timeout) => i32::try_from(timeout.as_micros().div_ceil(1000)).unwrap_or(i32::MAX),
        None => -1,
    };
    // SAFETY: `polled` is an array of N initialized pollfd structures that outlives the call.
    let result = unsafe { libc::poll(polled.as_mut_ptr(), N as libc::nfds_t, milliseconds) };
    if result == -1 {
        let error = io::Error::last_os_error();
        if error.kind() == ErrorKind::Interrupted {
            return Ok([false; N]);
        }
        return Err(error);
    }
    Ok(polled.map(|entry| entry.revents != 0))
}

/// The kernel's host name, the default node name.
fn hostname() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: gethostname writes at most buffer.len() bytes into the buffer.
    let result = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    let length = buffer
        .iter()
        .position(|&byte| byte == 0)
        .unwrap_or(buffer.len());
    if result != 0 || length == 0 {
        return "localhost".to_string();
    }
    String::from_utf8_lossy(&buffer[..length]).into_owned()
}
