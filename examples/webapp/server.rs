//! The HTTP server. tiny_http (blocking, a handful of dependencies, no async runtime to
//! explain) accepts connections and parses requests on its own threads; we take the
//! requests one by one and handle each on a thread of its own, so that slow ones run side
//! by side, and we count them, so that a graceful stop can wait for the last one.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Instant;

use tiny_http::{Header, Method, Request, Response, Server};

use crate::access_log::{self, Entry};
use crate::faults;
use crate::routes::{self, Reply, Then};
use crate::state::App;

/// At most this many requests are handled at once; more are answered 503 at once.
const MAX_IN_FLIGHT: usize = 512;

/// A bound socket and the server on it.
pub struct Listening {
    server: Server,
    addr: SocketAddr,
    /// Set by [`Listening::stop`], so that [`Listening::serve`] can tell a stop from a
    /// failure.
    stopping: AtomicBool,
}

impl Listening {
    pub fn bind(addr: SocketAddr) -> Result<Listening, String> {
        let listener = TcpListener::bind(addr)
            .map_err(|e| format!("--listen {addr}: cannot listen there: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("--listen {addr}: reading the bound address: {e}"))?;
        let server = Server::from_listener(listener, None)
            .map_err(|e| format!("starting the HTTP server on {addr}: {e}"))?;
        Ok(Listening {
            server,
            addr,
            stopping: AtomicBool::new(false),
        })
    }

    /// The address it listens on (with the port the system chose for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Makes [`Listening::serve`] return once it has taken every request received so far.
    /// Dropping the `Listening` then closes the socket.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.server.unblock();
    }

    /// Hands every request to a thread of its own until [`Listening::stop`]. `Err` if
    /// tiny_http can no longer accept connections (it gives up at the first accept error,
    /// too many open files for one): then exiting lets the supervisor start afresh.
    pub fn serve(&self, app: &Arc<App>) -> Result<(), String> {
        loop {
            match self.server.recv() {
                Ok(request) => dispatch(request, app),
                Err(_) if self.stopping.load(Ordering::SeqCst) => break,
                Err(e) => return Err(format!("accepting connections on {}: {e}", self.addr)),
            }
        }
        // Requests that arrived while stopping: answered like the others.
        while let Ok(Some(request)) = self.server.try_recv() {
            dispatch(request, app);
        }
        Ok(())
    }
}

/// Starts handling `request` on a new thread, counted in flight until it is answered.
fn dispatch(request: Request, app: &Arc<App>) {
    let received = Instant::now();
    let Some(ticket) = app.in_flight.enter(MAX_IN_FLIGHT) else {
        answer(request, routes::busy(MAX_IN_FLIGHT), received);
        return;
    };
    let app = Arc::clone(app);
    let spawned = thread::Builder::new()
        .name("request".to_owned())
        .spawn(move || {
            // In flight until this thread ends; /exit and /crash end the process first.
            let _ticket = ticket;
            match handle(request, &app, received) {
                Then::Continue => {}
                Then::Exit(code) => {
                    tracing::info!("exiting with status {code}, as /exit asked");
                    std::process::exit(code);
                }
                Then::DieOf(signal) => {
                    tracing::info!("dying of {signal}, as /crash asked");
                    faults::die_of(signal);
                }
            }
        });
    if let Err(e) = spawned {
        // The request went with the closure: tiny_http answers a dropped request with 500.
        tracing::error!("cannot start a thread for a request ({e}); it was answered 500");
    }
}

fn handle(request: Request, app: &App, received: Instant) -> Then {
    let accept = request
        .headers()
        .iter()
        .find(|header| header.field.equiv("Accept"))
        .map_or("", |header| header.value.as_str());
    let reply = routes::route(app, request.method(), request.url(), accept);
    answer(request, reply, received)
}

/// Sends the reply, writes the access-log line, and returns what to do next.
fn answer(request: Request, reply: Reply, received: Instant) -> Then {
    let method = request.method().clone();
    let target = request.url().to_owned();
    let client = request.remote_addr().map(SocketAddr::ip);
    let bytes = if method == Method::Head {
        0
    } else {
        reply.body.len()
    };
    let mut response = Response::from_data(reply.body)
        .with_status_code(reply.status)
        .with_header(header("Content-Type", reply.content_type));
    if reply.status == 405 {
        response.add_header(header("Allow", "GET, HEAD"));
    }
    if let Err(e) = request.respond(response) {
        tracing::warn!("answering {method} {target}: {e}");
    }
    access_log::write(&Entry {
        client,
        method: method.as_str(),
        target: &target,
        status: reply.status,
        bytes,
        duration: received.elapsed(),
    });
    reply.then
}

fn header(name: &str, value: &str) -> Header {
    // Only called with constant ASCII names and values, which from_bytes always accepts.
    Header::from_bytes(name, value).expect("constant ASCII header")
}
