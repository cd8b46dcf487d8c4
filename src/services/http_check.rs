//! An HTTP check: one plain HTTP/1.1 `GET`, done as a file descriptor of the event loop.
//!
//! [`HttpTarget`] is a parsed `http://` URL. pidvisor resolves no names (that would block
//! the loop): the host is an IP address, or `localhost` for 127.0.0.1. [`HttpCheck`] is
//! one attempt on a non-blocking socket: connect, write the request, read until the status
//! line has come. It never blocks and reads at most [`MAX_RESPONSE`] bytes; the caller
//! bounds it in time (a deadline of the loop) and closes it when done. 2xx and 3xx are
//! success, like Kubernetes' httpGet probe.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use crate::services::probe::TcpProbe;

/// The most of the response that is read: the status line must come within it.
pub const MAX_RESPONSE: usize = 1024;

/// Where an HTTP check goes: `http://HOST[:PORT][/PATH]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTarget {
    pub addr: SocketAddr,
    /// The `Host` header: the URL's host and port as written.
    pub host: String,
    /// The path and query, `/` if the URL has none.
    pub path: String,
}

impl HttpTarget {
    /// Parses a URL; the error says what is wrong and how to write it.
    pub fn parse(url: &str) -> Result<HttpTarget, String> {
        let example = "write e.g. \"http://127.0.0.1:8080/health\"";
        let Some(rest) = url.strip_prefix("http://") else {
            return Err(match url.split_once("://") {
                Some((scheme, _)) => format!(
                    "\"{url}\": the scheme {scheme}:// is not supported; only http:// (a check \
                     inside the container needs no TLS); {example}"
                ),
                None => format!("\"{url}\" is not an http:// URL; {example}"),
            });
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(at) if rest[at..].starts_with('/') => (&rest[..at], rest[at..].to_owned()),
            Some(at) => (&rest[..at], format!("/{}", &rest[at..])),
            None => (rest, "/".to_owned()),
        };
        if path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(format!(
                "\"{url}\": the path has spaces or control characters; percent-encode them"
            ));
        }
        let (host, port) = split_host_port(authority).ok_or_else(|| {
            format!("\"{url}\": \"{authority}\" is not HOST or HOST:PORT; {example}")
        })?;
        let ip: IpAddr = match host {
            "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
            _ => host.parse().map_err(|_| {
                format!(
                    "\"{url}\": \"{host}\" is not an IP address; pidvisor does not resolve names \
                     (it would block), so write an address such as 127.0.0.1 or [::1]"
                )
            })?,
        };
        Ok(HttpTarget {
            addr: SocketAddr::new(ip, port),
            host: authority.to_owned(),
            path,
        })
    }

    fn request(&self) -> Vec<u8> {
        format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: pidvisor\r\nAccept: */*\r\nConnection: close\r\n\r\n",
            self.path, self.host
        )
        .into_bytes()
    }
}

/// `host:port`, `[v6]:port`, `host` or `[v6]` (port 80).
fn split_host_port(authority: &str) -> Option<(&str, u16)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => 80,
        Some(port) => port.parse().ok().filter(|p| *p != 0)?,
    };
    (!host.is_empty()).then_some((host, port))
}

/// What an attempt waits for next, or how it ended.
#[derive(Debug, PartialEq, Eq)]
pub enum HttpStep {
    /// Wait until the socket is writable (connecting, or the request not all sent).
    Writable,
    /// Wait until the socket is readable.
    Readable,
    /// Over: `Ok` with the status line for 2xx and 3xx, `Err` with why not.
    Done(Result<String, String>),
}

/// One attempt in progress.
pub struct HttpCheck {
    socket: TcpProbe,
    request: Vec<u8>,
    sent: usize,
    connected: bool,
    response: Vec<u8>,
}

impl HttpCheck {
    /// Starts connecting; wait for [`HttpStep::Writable`] first.
    pub fn start(target: &HttpTarget) -> io::Result<HttpCheck> {
        Ok(HttpCheck {
            socket: TcpProbe::connect(target.addr)?,
            request: target.request(),
            sent: 0,
            connected: false,
            response: Vec::new(),
        })
    }

    /// The socket is ready as last asked: goes as far as it can without blocking.
    pub fn advance(&mut self) -> HttpStep {
        if !self.connected {
            if !self.socket.succeeded() {
                return HttpStep::Done(Err("connection refused or failed".to_owned()));
            }
            self.connected = true;
        }
        while self.sent < self.request.len() {
            let rest = &self.request[self.sent..];
            // SAFETY: writes at most rest.len() bytes from rest.
            let n = unsafe {
                libc::send(
                    self.socket.as_fd().as_raw_fd(),
                    rest.as_ptr().cast(),
                    rest.len(),
                    libc::MSG_NOSIGNAL,
                )
            };
            if n < 0 {
                let err = io::Error::last_os_error();
                return match err.kind() {
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::WouldBlock => HttpStep::Writable,
                    _ => HttpStep::Done(Err(format!("sending the request: {err}"))),
                };
            }
            self.sent += n as usize;
        }
        self.read_status()
    }

    fn read_status(&mut self) -> HttpStep {
        let mut buf = [0u8; MAX_RESPONSE];
        loop {
            let room = MAX_RESPONSE - self.response.len();
            // SAFETY: reads at most `room` <= buf.len() bytes into buf.
            let n = unsafe {
                libc::recv(
                    self.socket.as_fd().as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    room,
                    0,
                )
            };
            if n < 0 {
                let err = io::Error::last_os_error();
                return match err.kind() {
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::WouldBlock => HttpStep::Readable,
                    _ => HttpStep::Done(Err(format!("reading the response: {err}"))),
                };
            }
            self.response.extend_from_slice(&buf[..n as usize]);
            if let Some(end) = self.response.iter().position(|&b| b == b'\n') {
                return HttpStep::Done(judge(&self.response[..end]));
            }
            if n == 0 {
                return HttpStep::Done(Err(
                    "the connection closed before a status line came".to_owned()
                ));
            }
            if self.response.len() >= MAX_RESPONSE {
                return HttpStep::Done(Err(format!(
                    "no status line in the first {MAX_RESPONSE} bytes"
                )));
            }
        }
    }
}

impl AsFd for HttpCheck {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

/// `HTTP/1.1 200 OK`: success for 2xx and 3xx.
fn judge(line: &[u8]) -> Result<String, String> {
    let line = String::from_utf8_lossy(line).trim_end().to_owned();
    let mut words = line.split_whitespace();
    let version = words.next().unwrap_or("");
    let code = words.next().and_then(|c| c.parse::<u16>().ok());
    match code {
        Some(code) if version.starts_with("HTTP/") && (200..400).contains(&code) => Ok(line),
        Some(_) if version.starts_with("HTTP/") => Err(line),
        _ => Err(format!(
            "not an HTTP status line: {:?}",
            line.chars().take(80).collect::<String>()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::thread;

    fn target(url: &str) -> HttpTarget {
        HttpTarget::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    #[test]
    fn parses_addresses_ports_and_paths() {
        let t = target("http://127.0.0.1:8080/health?deep=1");
        assert_eq!(t.addr, "127.0.0.1:8080".parse().expect("addr"));
        assert_eq!(
            (t.host.as_str(), t.path.as_str()),
            ("127.0.0.1:8080", "/health?deep=1")
        );
        let t = target("http://[::1]/");
        assert_eq!(t.addr, "[::1]:80".parse().expect("addr"));
        assert_eq!(target("http://localhost:9000").path, "/");
        assert_eq!(target("http://10.0.0.1?x").path, "/?x");
    }

    #[test]
    fn refuses_what_it_cannot_check_and_says_how_to_write_it() {
        let err = |url: &str| HttpTarget::parse(url).expect_err(url);
        assert!(err("https://127.0.0.1/").contains("https:// is not supported"));
        assert!(err("127.0.0.1:80").contains("not an http:// URL"));
        assert!(err("http://db.internal/").contains("does not resolve names"));
        assert!(err("http://127.0.0.1:99999/").contains("is not HOST or HOST:PORT"));
        assert!(err("http://127.0.0.1:0/").contains("is not HOST or HOST:PORT"));
        assert!(err("http:///x").contains("is not HOST or HOST:PORT"));
        assert!(err("http://127.0.0.1/a b").contains("percent-encode"));
    }

    /// Serves one connection with `reply`, returns what the client sent.
    fn serve_once(reply: &'static [u8]) -> (HttpTarget, thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/ping", listener.local_addr().expect("addr"));
        let server = thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("accept");
            let mut request = Vec::new();
            let mut buf = [0u8; 512];
            while !request.ends_with(b"\r\n\r\n") {
                let n = stream.read(&mut buf).expect("read");
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buf[..n]);
            }
            let _ = stream.write_all(reply);
            String::from_utf8_lossy(&request).into_owned()
        });
        (target(&url), server)
    }

    /// Runs an attempt to its end, waiting with poll(2) as the loop waits with epoll.
    fn run(check: &mut HttpCheck) -> Result<String, String> {
        let mut step = HttpStep::Writable;
        loop {
            let events = match step {
                HttpStep::Writable => libc::POLLOUT,
                HttpStep::Readable => libc::POLLIN,
                HttpStep::Done(result) => return result,
            };
            let mut pfd = libc::pollfd {
                fd: check.as_fd().as_raw_fd(),
                events,
                revents: 0,
            };
            // SAFETY: one valid pollfd, alive for the call.
            let ready = unsafe { libc::poll(&mut pfd, 1, 10_000) };
            assert_eq!(ready, 1, "poll timed out");
            step = check.advance();
        }
    }

    #[test]
    fn a_2xx_or_3xx_status_is_success_and_others_are_failures() {
        let (t, server) = serve_once(b"HTTP/1.1 204 No Content\r\n\r\n");
        assert_eq!(
            run(&mut HttpCheck::start(&t).expect("start")),
            Ok("HTTP/1.1 204 No Content".into())
        );
        let request = server.join().expect("server");
        assert!(
            request.starts_with("GET /ping HTTP/1.1\r\nHost: 127.0.0.1:"),
            "{request}"
        );
        let (t, _server) = serve_once(b"HTTP/1.0 302 Found\r\n\r\n");
        assert!(run(&mut HttpCheck::start(&t).expect("start")).is_ok());
        let (t, _server) = serve_once(b"HTTP/1.1 503 Service Unavailable\r\n\r\n");
        assert_eq!(
            run(&mut HttpCheck::start(&t).expect("start")),
            Err("HTTP/1.1 503 Service Unavailable".into())
        );
    }

    #[test]
    fn garbage_a_closed_port_or_an_endless_line_fail_without_reading_more_than_the_bound() {
        let (t, _server) = serve_once(b"SSH-2.0-OpenSSH\r\n");
        assert!(
            run(&mut HttpCheck::start(&t).expect("start"))
                .is_err_and(|e| e.contains("not an HTTP status line"))
        );
        let (t, _server) = serve_once(&[b'x'; 4096]);
        assert_eq!(
            run(&mut HttpCheck::start(&t).expect("start")),
            Err(format!("no status line in the first {MAX_RESPONSE} bytes"))
        );
        let (t, _server) = serve_once(b"");
        assert!(
            run(&mut HttpCheck::start(&t).expect("start"))
                .is_err_and(|e| e.contains("closed before"))
        );
        let closed = {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.local_addr().expect("addr")
        };
        let t = target(&format!("http://{closed}/"));
        assert!(
            run(&mut HttpCheck::start(&t).expect("start")).is_err_and(|e| e.contains("refused"))
        );
    }
}
