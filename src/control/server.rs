//! The control socket: a Unix stream socket served by the supervisor's one event loop.
//!
//! This module does the connection work and nothing else: accept, check the peer's uid
//! (`SO_PEERCRED`: root or pidvisor's own uid), read request lines into a bounded buffer,
//! write replies and events from a bounded buffer, time out idle and stalled clients.
//! What a request *does* is decided by the supervisor, which takes requests from
//! [`ControlServer::next_request`] and answers with [`ControlServer::reply`].
//!
//! Nothing here blocks: every socket is non-blocking and registered with the supervisor's
//! epoll under a token with [`TOKEN_BIT`] set (the listener is `TOKEN_BIT` itself, each
//! client `TOKEN_BIT | id`). A client that sends garbage gets an error line; one that
//! sends a line longer than [`protocol::MAX_REQUEST`], or nothing for [`IDLE_TIMEOUT`],
//! gets an error line and is closed; one that does not read its replies for
//! [`WRITE_TIMEOUT`](connection::WRITE_TIMEOUT), or lets more than [`FOLLOW_LIMIT`] bytes
//! of events pile up, is dropped. Requests on one connection are carried out one at a
//! time, each once the previous reply has gone out; meanwhile pidvisor reads no more from
//! that client, so what it sends stays in the socket instead of in pidvisor's memory. No
//! client can make the loop wait, so signals, reaping and restarts never do.
//!
//! One client's state and buffers are a `connection::Client`; creating the socket file and
//! removing it at exit are in `socket`.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sys::epoll::{Epoll, EpollEvent, EpollFlags};
use tracing::{debug, info, warn};

use crate::control::protocol::{self, ErrorCode, Refusal, Request};

mod connection;
mod socket;

use connection::{Client, IDLE_TIMEOUT, Mode, is_transient, peer_uid};

/// Set in every epoll token that belongs to the control socket (a token space of its own,
/// apart from the signalfd's and the services').
pub const TOKEN_BIT: u64 = 1 << 63;

/// A connected client, by the number it was given at accept.
pub type ClientId = u64;

/// An event follower with more than this much unread output is dropped.
pub const FOLLOW_LIMIT: usize = 1024 * 1024;
/// Clients at once; more are told `busy` and closed.
pub const MAX_CLIENTS: usize = 256;
/// How long accepting pauses after an error such as EMFILE.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// Bytes read per readiness event.
const READ_CHUNK: usize = 4096;

/// True if `token` belongs to the control socket.
pub fn owns_token(token: u64) -> bool {
    token & TOKEN_BIT != 0
}

/// The listening socket and its clients.
pub struct ControlServer {
    listener: UnixListener,
    path: PathBuf,
    own_uid: u32,
    clients: BTreeMap<ClientId, Client>,
    next_id: ClientId,
    /// Accepting is paused (out of file descriptors) until then: a listener that stays
    /// readable must not make the loop spin.
    paused_until: Option<Instant>,
    /// The last accept failed (logged once, not at every retry).
    accept_failing: bool,
}

impl ControlServer {
    /// The listener or a client is ready: accept, read, write, as the case may be.
    pub fn on_ready(&mut self, epoll: &Epoll, token: u64, flags: EpollFlags, now: Instant) {
        let id = token & !TOKEN_BIT;
        if id == 0 {
            self.accept(epoll, now);
            return;
        }
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        if flags.intersects(EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR) {
            // The peer is gone for good (a half-close is EPOLLIN with end-of-file).
            self.drop_client(epoll, id);
            return;
        }
        if flags.contains(EpollFlags::EPOLLIN) && !client.read_closed {
            let mut chunk = [0u8; READ_CHUNK];
            match client.stream.read(&mut chunk) {
                Ok(0) => client.read_closed = true,
                Ok(n) => {
                    if matches!(client.mode, Mode::Following) {
                        // A follower has nothing more to ask: ignore what it sends.
                    } else {
                        client.input.extend_from_slice(&chunk[..n]);
                    }
                }
                Err(err) if is_transient(&err) => {}
                Err(_) => {
                    self.drop_client(epoll, id);
                    return;
                }
            }
            let too_long =
                !client.input.contains(&b'\n') && client.input.len() >= protocol::MAX_REQUEST;
            if too_long {
                client.input.clear();
                let refusal = Refusal::new(
                    ErrorCode::TooLong,
                    format!(
                        "request longer than {} bytes without a newline; closing",
                        protocol::MAX_REQUEST
                    ),
                );
                client.queue(&protocol::error(&refusal));
                client.mode = Mode::Closing { since: now };
            }
        }
        self.flush(epoll, id, now);
    }

    fn accept(&mut self, epoll: &Epoll, now: Instant) {
        // A bounded batch per wake-up: the rest waits for the next round (level-triggered).
        for _ in 0..64 {
            let stream = match self.listener.accept() {
                Ok((stream, _)) => {
                    if self.accept_failing {
                        info!("control socket: accepting clients again");
                        self.accept_failing = false;
                    }
                    stream
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err) if is_transient(&err) => continue,
                Err(err) => {
                    if !self.accept_failing {
                        warn!("control socket: accept: {err}; trying again every {ACCEPT_PAUSE:?}");
                    }
                    self.accept_failing = true;
                    self.set_listening(epoll, false);
                    self.paused_until = Some(now + ACCEPT_PAUSE);
                    return;
                }
            };
            if let Err(err) = stream.set_nonblocking(true) {
                warn!("control socket: {err}");
                continue;
            }
            let refusal = match peer_uid(&stream) {
                Ok(uid) if uid == 0 || uid == self.own_uid => None,
                Ok(uid) => {
                    info!("control socket: refused a client running as uid {uid}");
                    Some(Refusal::new(
                        ErrorCode::PermissionDenied,
                        format!(
                            "permission denied: uid {uid} is neither root nor pidvisor's uid {}",
                            self.own_uid
                        ),
                    ))
                }
                Err(err) => Some(Refusal::new(
                    ErrorCode::PermissionDenied,
                    format!("permission denied: cannot check the peer's credentials: {err}"),
                )),
            };
            let full = refusal.is_none()
                && self.clients.len() >= MAX_CLIENTS
                && !self.evict_longest_idle(epoll, now);
            let refusal = refusal.or_else(|| {
                full.then(|| {
                    Refusal::new(
                        ErrorCode::Busy,
                        format!("too many clients ({MAX_CLIENTS}), none idle; try again"),
                    )
                })
            });
            if let Some(refusal) = refusal {
                // One short line into an empty socket buffer: it fits, or it is lost.
                let _ = (&stream).write(protocol::error(&refusal).as_bytes());
                continue;
            }
            let id = self.next_id;
            self.next_id += 1;
            let interest = EpollFlags::EPOLLIN;
            if let Err(err) = epoll.add(stream.as_fd(), EpollEvent::new(interest, TOKEN_BIT | id)) {
                warn!("control socket: epoll_ctl: {err}");
                continue;
            }
            debug!(client = id, "control client connected");
            self.clients.insert(
                id,
                Client {
                    stream,
                    input: Vec::new(),
                    output: Vec::new(),
                    written: 0,
                    mode: Mode::Idle,
                    read_closed: false,
                    since: now,
                    interest,
                },
            );
        }
    }

    /// Makes room for a new client by closing the one that has waited longest without
    /// sending a whole request (told `idle_timeout`), so that hundreds of idle connections
    /// cannot lock `pidvisorctl` out. False if every client is busy, following or closing.
    fn evict_longest_idle(&mut self, epoll: &Epoll, now: Instant) -> bool {
        let idle = self
            .clients
            .iter()
            .filter(|(_, c)| c.can_take_request() && !c.input.contains(&b'\n'))
            .min_by_key(|(_, c)| c.since)
            .map(|(&id, c)| (id, now.saturating_duration_since(c.since)));
        let Some((id, waited)) = idle else {
            return false;
        };
        let refusal = Refusal::new(
            ErrorCode::IdleTimeout,
            format!(
                "no complete request for {:.1}s and {MAX_CLIENTS} clients connected: \
                 closing to make room",
                waited.as_secs_f64()
            ),
        );
        if let Some(client) = self.clients.get(&id) {
            // One short line into what is most likely an empty socket buffer.
            let _ = (&client.stream).write(protocol::error(&refusal).as_bytes());
        }
        debug!(client = id, "control client closed to make room");
        self.drop_client(epoll, id);
        true
    }

    /// The next request to carry out, from any idle client with a complete line. Lines
    /// that do not parse are answered here with an error.
    pub fn next_request(&mut self, epoll: &Epoll, now: Instant) -> Option<(ClientId, Request)> {
        let ids: Vec<ClientId> = self
            .clients
            .iter()
            .filter(|(_, c)| c.can_take_request() && c.input.contains(&b'\n'))
            .map(|(&id, _)| id)
            .collect();
        for id in ids {
            while let Some(client) = self.clients.get_mut(&id)
                && client.can_take_request()
            {
                let Some(end) = client.input.iter().position(|&b| b == b'\n') else {
                    break;
                };
                let line: Vec<u8> = client.input.drain(..=end).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                match protocol::parse_request(&line) {
                    Ok(request) => {
                        client.mode = Mode::Busy;
                        self.flush(epoll, id, now);
                        return Some((id, request));
                    }
                    Err(refusal) => {
                        // Written at once: the next line waits until the socket took it.
                        client.queue(&protocol::error(&refusal));
                        self.flush(epoll, id, now);
                    }
                }
            }
            self.flush(epoll, id, now);
        }
        None
    }

    /// Answers the client's request; it may then send the next one.
    pub fn reply(&mut self, epoll: &Epoll, id: ClientId, line: &str, now: Instant) {
        if let Some(client) = self.clients.get_mut(&id) {
            client.queue(line);
            if client.mode == Mode::Busy {
                client.mode = Mode::Idle;
                client.since = now;
            }
            self.flush(epoll, id, now);
        }
    }

    /// Sends a line without ending the request (e.g. the event history).
    pub fn send(&mut self, id: ClientId, line: &str) {
        if let Some(client) = self.clients.get_mut(&id) {
            client.queue(line);
        }
    }

    /// From now on the client gets every event line (see [`ControlServer::broadcast`]).
    pub fn follow(&mut self, epoll: &Epoll, id: ClientId, now: Instant) {
        if let Some(client) = self.clients.get_mut(&id) {
            client.mode = Mode::Following;
            client.since = now;
        }
        self.flush(epoll, id, now);
    }

    /// Whether the client is still connected (a wait whose client left is forgotten).
    pub fn is_connected(&self, id: ClientId) -> bool {
        self.clients.contains_key(&id)
    }

    /// Sends an event line to every follower. One that has more than [`FOLLOW_LIMIT`]
    /// unread bytes is told so and closed: a slow reader costs bounded memory and never
    /// holds up the loop.
    pub fn broadcast(&mut self, epoll: &Epoll, line: &str, now: Instant) {
        let followers: Vec<ClientId> = self
            .clients
            .iter()
            .filter(|(_, c)| c.mode == Mode::Following)
            .map(|(&id, _)| id)
            .collect();
        for id in followers {
            let Some(client) = self.clients.get_mut(&id) else {
                continue;
            };
            if client.pending() + line.len() > FOLLOW_LIMIT {
                warn!(
                    "control socket: an event follower fell more than {FOLLOW_LIMIT} bytes behind; dropping it"
                );
                let refusal = Refusal::new(
                    ErrorCode::Overflow,
                    format!("you fell more than {FOLLOW_LIMIT} bytes behind the events; closing"),
                );
                client.queue(&protocol::error(&refusal));
                client.mode = Mode::Closing { since: now };
            } else {
                client.queue(line);
            }
            self.flush(epoll, id, now);
        }
    }

    /// The earliest client timeout (or the end of an accept pause).
    pub fn deadline(&self) -> Option<Instant> {
        self.clients
            .values()
            .filter_map(Client::deadline)
            .chain(self.paused_until)
            .min()
    }

    fn set_listening(&self, epoll: &Epoll, on: bool) {
        let flags = if on {
            EpollFlags::EPOLLIN
        } else {
            EpollFlags::empty()
        };
        let mut event = EpollEvent::new(flags, TOKEN_BIT);
        if let Err(err) = epoll.modify(self.listener.as_fd(), &mut event) {
            warn!("control socket: epoll_ctl: {err}");
        }
    }

    /// Closes clients whose time is up.
    pub fn on_deadlines(&mut self, epoll: &Epoll, now: Instant) {
        if self.paused_until.is_some_and(|t| t <= now) {
            self.paused_until = None;
            self.set_listening(epoll, true);
        }
        let due: Vec<ClientId> = self
            .clients
            .iter()
            .filter(|(_, c)| c.deadline().is_some_and(|d| d <= now))
            .map(|(&id, _)| id)
            .collect();
        for id in due {
            let Some(client) = self.clients.get_mut(&id) else {
                continue;
            };
            match client.mode {
                Mode::Idle if client.pending() == 0 => {
                    let refusal = Refusal::new(
                        ErrorCode::IdleTimeout,
                        format!(
                            "no complete request within {}s; closing",
                            IDLE_TIMEOUT.as_secs()
                        ),
                    );
                    client.queue(&protocol::error(&refusal));
                    client.mode = Mode::Closing { since: now };
                    self.flush(epoll, id, now);
                }
                _ => {
                    debug!(client = id, "control client dropped: not reading");
                    self.drop_client(epoll, id);
                }
            }
        }
    }

    /// Writes what the socket takes, closes the client when it is done, and keeps the
    /// epoll interest in step.
    fn flush(&mut self, epoll: &Epoll, id: ClientId, now: Instant) {
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        while client.pending() > 0 {
            match (&client.stream).write(&client.output[client.written..]) {
                Ok(0) => break,
                Ok(n) => {
                    client.written += n;
                    client.since = now;
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.drop_client(epoll, id);
                    return;
                }
            }
        }
        if client.pending() == 0 {
            client.output.clear();
            client.written = 0;
        }
        let done = match client.mode {
            Mode::Closing { .. } => client.pending() == 0,
            // A half-closed client with nothing in progress has nothing more to say.
            Mode::Idle => {
                client.read_closed && client.pending() == 0 && !client.input.contains(&b'\n')
            }
            Mode::Busy | Mode::Following => false,
        };
        if done {
            if matches!(client.mode, Mode::Closing { .. }) {
                // Read what is left of a refused request, so that the close is a clean
                // end-of-file for the peer instead of a reset that could hide our error.
                let mut chunk = [0u8; READ_CHUNK];
                for _ in 0..64 {
                    if !matches!(client.stream.read(&mut chunk), Ok(n) if n > 0) {
                        break;
                    }
                }
            }
            self.drop_client(epoll, id);
            return;
        }
        let wanted = client.wanted_interest();
        if wanted != client.interest {
            let mut event = EpollEvent::new(wanted, TOKEN_BIT | id);
            match epoll.modify(client.stream.as_fd(), &mut event) {
                Ok(()) => client.interest = wanted,
                Err(_) => self.drop_client(epoll, id),
            }
        }
    }

    fn drop_client(&mut self, epoll: &Epoll, id: ClientId) {
        if let Some(client) = self.clients.remove(&id) {
            let _ = epoll.delete(client.stream.as_fd());
            debug!(client = id, "control client closed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::epoll::EpollCreateFlags;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::net::UnixStream;
    use std::path::Path;

    struct Fixture {
        dir: PathBuf,
        epoll: Epoll,
        server: ControlServer,
    }

    impl Fixture {
        fn new(name: &str) -> Fixture {
            let dir = std::env::temp_dir()
                .join(format!("pidvisor-control-{}-{name}", std::process::id()));
            fs::create_dir_all(&dir).expect("temp dir");
            let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).expect("epoll");
            let server = ControlServer::bind(&dir.join("sub/control.sock"), &epoll).expect("bind");
            Fixture { dir, epoll, server }
        }

        /// Connects a client and lets the server accept it.
        fn connect(&mut self) -> (UnixStream, ClientId) {
            let client = UnixStream::connect(&self.server.path).expect("connect");
            let id = self.server.next_id;
            self.server
                .on_ready(&self.epoll, TOKEN_BIT, EpollFlags::EPOLLIN, Instant::now());
            assert!(self.server.is_connected(id), "accepted");
            (client, id)
        }
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }

    #[test]
    fn the_socket_is_0600_in_a_created_folder_and_a_stale_one_is_replaced() {
        let fixture = Fixture::new("mode");
        let mode = fs::metadata(&fixture.server.path)
            .expect("socket")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let path = fixture.server.path.clone();
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).expect("epoll");
        // A live socket is not taken over.
        let err = ControlServer::bind(&path, &epoll).err().expect("refused");
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        drop(fixture);
        assert!(!path.exists(), "removed at exit");
        // A stale one (nobody listens) is replaced.
        fs::create_dir_all(path.parent().expect("dir")).expect("dir");
        drop(UnixListener::bind(&path).expect("bind"));
        assert!(path.exists(), "left behind");
        let second = ControlServer::bind(&path, &epoll).expect("rebind over a stale socket");
        drop(second);
        assert!(!path.exists(), "removed at exit");
        // A file that is not a socket is left alone.
        fs::write(&path, "data").expect("write");
        assert!(ControlServer::bind(&path, &epoll).is_err());
        assert_eq!(fs::read_to_string(&path).expect("still there"), "data");
        if let Some(dir) = path.parent().and_then(Path::parent) {
            let _ = fs::remove_dir_all(dir);
        }
    }

    #[test]
    fn when_full_the_client_idle_longest_makes_room_for_a_new_one() {
        let mut fixture = Fixture::new("full");
        let (mut busy, busy_id) = fixture.connect();
        busy.write_all(b"{\"cmd\":\"status\"}\n").expect("write");
        let now = Instant::now();
        let token = TOKEN_BIT | busy_id;
        fixture
            .server
            .on_ready(&fixture.epoll, token, EpollFlags::EPOLLIN, now);
        assert!(fixture.server.next_request(&fixture.epoll, now).is_some());
        let mut idle: Vec<_> = (1..MAX_CLIENTS).map(|_| fixture.connect()).collect();
        // Full: the oldest idle client (not the busy one) is told why and closed.
        let (_newcomer, _) = fixture.connect();
        let (mut oldest, oldest_id) = idle.remove(0);
        assert!(!fixture.server.is_connected(oldest_id));
        assert!(fixture.server.is_connected(busy_id));
        let mut told = String::new();
        oldest.read_to_string(&mut told).expect("read");
        assert!(told.contains("\"error\":\"idle_timeout\""), "{told}");
        assert!(told.contains("closing to make room"), "{told}");
    }

    #[test]
    fn requests_come_out_one_at_a_time_and_garbage_is_answered_here() {
        let mut fixture = Fixture::new("requests");
        let (mut client, id) = fixture.connect();
        client
            .write_all(b"nonsense\n{\"cmd\":\"status\"}\n{\"cmd\":\"events\"}\n")
            .expect("write");
        let now = Instant::now();
        fixture
            .server
            .on_ready(&fixture.epoll, TOKEN_BIT | id, EpollFlags::EPOLLIN, now);
        let (who, first) = fixture
            .server
            .next_request(&fixture.epoll, now)
            .expect("one");
        assert_eq!((who, first), (id, Request::Status { services: vec![] }));
        assert_eq!(
            fixture.server.next_request(&fixture.epoll, now),
            None,
            "the next waits for the reply"
        );
        fixture
            .server
            .reply(&fixture.epoll, id, "{\"ok\":true}\n", now);
        let (_, second) = fixture
            .server
            .next_request(&fixture.epoll, now)
            .expect("two");
        assert_eq!(second, Request::Events { follow: false });
        let mut reader = io::BufReader::new(client);
        let mut line = String::new();
        io::BufRead::read_line(&mut reader, &mut line).expect("read");
        assert!(line.contains("\"bad_request\""), "{line}");
        line.clear();
        io::BufRead::read_line(&mut reader, &mut line).expect("read");
        assert_eq!(line, "{\"ok\":true}\n");
    }

    #[test]
    fn a_follower_that_does_not_read_is_dropped_with_a_notice_and_never_blocks() {
        let mut fixture = Fixture::new("overflow");
        let (client, id) = fixture.connect();
        let now = Instant::now();
        fixture.server.clients.get_mut(&id).expect("client").mode = Mode::Busy;
        fixture.server.follow(&fixture.epoll, id, now);
        let line = format!("{{\"event\":\"x\",\"pad\":\"{}\"}}\n", "p".repeat(200));
        let mut sent = 0;
        // Far more than the socket buffer plus FOLLOW_LIMIT: each call returns at once.
        let started = Instant::now();
        while fixture
            .server
            .clients
            .get(&id)
            .is_some_and(|c| c.mode == Mode::Following)
        {
            fixture.server.broadcast(&fixture.epoll, &line, now);
            sent += 1;
            assert!(sent < 100_000, "never dropped");
        }
        assert!(started.elapsed() < Duration::from_secs(5));
        // The client reads everything queued, then the notice, then end-of-file.
        client.set_nonblocking(true).expect("nonblocking");
        let mut received = Vec::new();
        let mut chunk = [0u8; 65536];
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match (&client).read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => received.extend_from_slice(&chunk[..n]),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    assert!(Instant::now() < deadline, "no end-of-file");
                    fixture.server.on_ready(
                        &fixture.epoll,
                        TOKEN_BIT | id,
                        EpollFlags::EPOLLOUT,
                        Instant::now(),
                    );
                }
                Err(err) => panic!("read: {err}"),
            }
        }
        let text = String::from_utf8(received).expect("UTF-8");
        let last = text.lines().last().expect("lines");
        assert!(last.contains("\"overflow\""), "{last}");
        assert!(text.lines().count() > 1000);
        assert!(!fixture.server.is_connected(id));
    }
}
