//! Web nodes for the tests: threads that answer every request with their name, except
//! `/slow`, which they hold until the test releases it (a request in flight); and a node
//! that vanished, whose port takes no connection at all.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

#[derive(Default)]
struct Held {
    count: usize,
    released: bool,
}

pub struct WebNode {
    port: u16,
    held: Arc<(Mutex<Held>, Condvar)>,
}

impl WebNode {
    /// A node on a free loopback port whose answer is `name`.
    pub fn start(name: &'static str) -> WebNode {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
        let port = listener.local_addr().expect("bound").port();
        let held = Arc::new((Mutex::new(Held::default()), Condvar::new()));
        let shared = Arc::clone(&held);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let held = Arc::clone(&shared);
                std::thread::spawn(move || answer(stream, name, &held));
            }
        });
        WebNode { port, held }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Waits until `n` `/slow` requests are being held.
    pub fn wait_for_held_requests(&self, n: usize) {
        let (lock, changed) = &*self.held;
        let held = lock.lock().unwrap_or_else(PoisonError::into_inner);
        let (held, timeout) = changed
            .wait_timeout_while(held, Duration::from_secs(30), |h| h.count < n)
            .unwrap_or_else(PoisonError::into_inner);
        assert!(
            !timeout.timed_out(),
            "only {} slow requests arrived, not {n}",
            held.count
        );
    }

    pub fn release_held_requests(&self) {
        let (lock, changed) = &*self.held;
        lock.lock().unwrap_or_else(PoisonError::into_inner).released = true;
        changed.notify_all();
    }
}

/// A loopback port where a connect waits for an answer that never comes, as to a node
/// that vanished: its listener never accepts, and its accept queue is kept full, so the
/// kernel drops every further SYN.
pub struct Vanished {
    listener: TcpListener,
    _queued: Vec<TcpStream>,
}

impl Vanished {
    pub fn new() -> Vanished {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
        // SAFETY: listen(2) on the listener's own open descriptor, only to shrink its
        // accept queue to one connection.
        let shrunk = unsafe { libc::listen(listener.as_raw_fd(), 0) };
        assert_eq!(shrunk, 0, "listen(fd, 0)");
        let address: SocketAddr = listener.local_addr().expect("bound");
        let mut queued = Vec::new();
        // Connections until one is not taken: the queue is full from then on.
        while let Ok(stream) = TcpStream::connect_timeout(&address, Duration::from_millis(200)) {
            queued.push(stream);
            assert!(queued.len() < 16, "the accept queue does not fill up");
        }
        Vanished {
            listener,
            _queued: queued,
        }
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().expect("bound").port()
    }
}

fn answer(stream: TcpStream, name: &str, held: &(Mutex<Held>, Condvar)) {
    let mut reader = BufReader::new(&stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut header = String::new();
    while reader
        .read_line(&mut header)
        .map(|n| n > 2)
        .unwrap_or(false)
    {
        header.clear();
    }
    if request_line.split_whitespace().nth(1) == Some("/slow") {
        let (lock, changed) = held;
        let mut state = lock.lock().unwrap_or_else(PoisonError::into_inner);
        state.count += 1;
        changed.notify_all();
        let _released = changed
            .wait_while(state, |h| !h.released)
            .unwrap_or_else(PoisonError::into_inner);
    }
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{name}",
        name.len()
    );
    let _ = (&stream).write_all(response.as_bytes());
}
