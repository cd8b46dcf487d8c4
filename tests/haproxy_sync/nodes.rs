//! Web nodes for the tests: threads that answer every request with their name, except
//! `/slow`, which they hold until the test releases it (a request in flight).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
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
