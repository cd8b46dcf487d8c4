//! The steady request loop through the load balancer: a few clients, each sending
//! `GET /?req=N` (N unique across them) at a steady pace to the lb's published port on
//! loopback, and recording for each request when it started and ended and which web node
//! answered, or why it failed. Bounded in count and in time; it stops when asked.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Clients sending at once: each has at most one request in flight.
pub const CLIENTS: usize = 4;
/// Each client's pause between two requests: about 4 × 50 = 200 requests a second.
const PACE: Duration = Duration::from_millis(20);
/// The loop's bounds, whatever the test does.
const MAX_REQUESTS: u64 = 40_000;
const MAX_TIME: Duration = Duration::from_secs(300);
/// How long one request may take, connect and answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// One request of the loop.
#[derive(Debug, Clone)]
pub struct Request {
    pub id: u64,
    pub started: Instant,
    pub ended: Instant,
    /// The web node that answered (its name, from the JSON of `/`), or why it failed.
    pub outcome: Result<String, String>,
}

pub struct Load {
    stop: Arc<AtomicBool>,
    done: Arc<Mutex<Vec<Request>>>,
    clients: Vec<JoinHandle<()>>,
}

impl Load {
    pub fn start(lb: SocketAddr) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(Mutex::new(Vec::new()));
        let next_id = Arc::new(AtomicU64::new(1));
        let began = Instant::now();
        let clients = (0..CLIENTS)
            .map(|_| {
                let (stop, done, next_id) = (stop.clone(), done.clone(), next_id.clone());
                thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) && began.elapsed() < MAX_TIME {
                        let id = next_id.fetch_add(1, Ordering::Relaxed);
                        if id > MAX_REQUESTS {
                            return;
                        }
                        let started = Instant::now();
                        let outcome = get_node(lb, id);
                        let request = Request {
                            id,
                            started,
                            ended: Instant::now(),
                            outcome,
                        };
                        done.lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push(request);
                        thread::sleep(PACE);
                    }
                })
            })
            .collect();
        Load {
            stop,
            done,
            clients,
        }
    }

    /// The requests finished so far.
    pub fn so_far(&self) -> Vec<Request> {
        self.done
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Stops the clients (each finishes its request) and returns every request.
    pub fn finish(mut self) -> Vec<Request> {
        self.stop.store(true, Ordering::Relaxed);
        for client in self.clients.drain(..) {
            let _ = client.join();
        }
        let mut requests = self.so_far();
        requests.sort_by_key(|request| request.id);
        requests
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// `GET /?req=ID` with `Accept: application/json`: the answering node's name.
pub fn get_node(lb: SocketAddr, id: u64) -> Result<String, String> {
    let mut stream =
        TcpStream::connect_timeout(&lb, REQUEST_TIMEOUT).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(REQUEST_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(REQUEST_TIMEOUT)))
        .map_err(|e| format!("socket: {e}"))?;
    let request = format!(
        "GET /?req={id} HTTP/1.1\r\nHost: lb\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| format!("receive: {e}"))?;
    let status = response.lines().next().unwrap_or("");
    if !status.starts_with("HTTP/1.1 200") {
        return Err(format!("answer {status:?}"));
    }
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("");
    let page: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("body {body:?}: {e}"))?;
    page["node"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no node in {body:?}"))
}

/// Whether the request was in flight at some moment between `from` and `to`.
pub fn overlaps(request: &Request, from: Instant, to: Instant) -> bool {
    request.started <= to && request.ended >= from
}
