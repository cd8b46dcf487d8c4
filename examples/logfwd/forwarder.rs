//! The one loop: it waits (`poll`) on stdin, the signal pipe and the collector's socket,
//! with one deadline (the next connect attempt, the end of the flush, or the next look at
//! the acknowledgements), and reacts to whichever comes first.
//!
//! - A chunk on stdin is cut into lines; each is echoed to stdout, stamped, framed and
//!   pushed into the backlog. When it is full, the oldest lines are dropped if the
//!   collector is unreachable (down, or stalled: nothing acknowledged for 2 s); if it is
//!   connected and only slower, stdin waits instead.
//! - While connected, lines move from the backlog to the link as the socket takes them;
//!   the link keeps them until the collector acknowledges them.
//! - A lost connection gives its unacknowledged lines back to the backlog; connecting
//!   is retried with exponential backoff (100 ms doubling to 5 s). A connect attempt
//!   blocks the loop (name lookup, then at most 2 s per address); stdin waits meanwhile.
//! - End of input, SIGTERM or SIGINT start the flush: it ends when every line is
//!   acknowledged, or at `--flush-timeout`, saying how many were not delivered. Exit 0.
//!
//! Error policy: before the loop (signals, hostname), fail fast; inside it, the only fatal
//! error is a failing `poll`. The collector's failures are retried, a stdout that cannot
//! be written is given up with a warning (the lines still go to the collector).

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant, SystemTime};

use crate::backlog::Backlog;
use crate::cli::Config;
use crate::lines::LineSplitter;
use crate::link::{Link, Lost};
use crate::sys::{self, Watch};
use crate::syslog::Header;

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// While lines wait for their acknowledgement, how often to look (the kernel has no event
/// for "acknowledged").
const ACK_CHECK: Duration = Duration::from_millis(10);
/// How many bytes to hand to the link ahead of the socket; the rest waits in the backlog,
/// where the bound applies.
const LINK_AHEAD: usize = 256 << 10;
/// A connected collector that acknowledges nothing for this long, while lines wait, is
/// treated as unreachable: the input is read again and the oldest lines drop, so that a
/// stalled collector does not stall the service.
const STALLED_AFTER: Duration = Duration::from_secs(2);

enum Connection {
    Down {
        retry_at: Instant,
        backoff: Duration,
    },
    Up(Link),
}

/// What [`Forwarder::wait`] found ready.
struct Ready {
    signal: bool,
    stdin: bool,
    peer: bool,
}

struct Forwarder {
    config: Config,
    header: Header,
    backlog: Backlog,
    connection: Connection,
    echo: Option<BufWriter<File>>,
    /// Set at end of input (or SIGTERM/SIGINT): give up at this instant.
    flush_until: Option<Instant>,
    /// Lines dropped and not yet reported to the collector.
    unreported_drops: u64,
    /// Whether the buffer overflowed since the last report (one warning per episode).
    dropping: bool,
}

pub fn run(config: Config) -> Result<(), String> {
    let (signal_reader, signal_writer) =
        UnixStream::pair().map_err(|e| format!("cannot create the signal pipe: {e}"))?;
    signal_reader
        .set_nonblocking(true)
        .map_err(|e| format!("cannot set up the signal pipe: {e}"))?;
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        let writer = signal_writer
            .try_clone()
            .map_err(|e| format!("cannot set up the signal pipe: {e}"))?;
        signal_hook::low_level::pipe::register(signal, writer)
            .map_err(|e| format!("cannot handle signal {signal}: {e}"))?;
    }
    let hostname = match &config.hostname {
        Some(name) => name.clone(),
        None => this_hostname()?,
    };
    let stdin = dup_stdio(io::stdin().as_fd(), "stdin")?;
    let echo = match config.echo {
        true => Some(BufWriter::with_capacity(
            64 << 10,
            dup_stdio(io::stdout().as_fd(), "stdout")?,
        )),
        false => None,
    };
    let header = Header::new(
        config.facility,
        config.severity,
        &hostname,
        &config.app,
        std::process::id(),
    );
    let mut forwarder = Forwarder {
        backlog: Backlog::new(config.buffer_lines, config.buffer_bytes),
        header,
        connection: Connection::Down {
            retry_at: Instant::now(),
            backoff: BACKOFF_MIN,
        },
        echo,
        flush_until: None,
        unreported_drops: 0,
        dropping: false,
        config,
    };
    forwarder.run(stdin, signal_reader)
}

impl Forwarder {
    fn run(&mut self, mut stdin: File, mut signals: UnixStream) -> Result<(), String> {
        let mut splitter = LineSplitter::new(self.config.max_line);
        let mut chunk = vec![0u8; 64 << 10];
        loop {
            self.connect_when_due();
            self.send();
            if let Some(until) = self.flush_until {
                if self.everything_delivered() {
                    self.finish();
                    return Ok(());
                }
                if Instant::now() >= until {
                    self.give_up();
                    return Ok(());
                }
            }

            let ready = self.wait(&stdin, &signals)?;
            if ready.signal {
                drain(&mut signals);
                tracing::info!(
                    "stop signal: flushing for at most {:?}",
                    self.config.flush_timeout
                );
                self.start_flush(&mut splitter);
            }
            if ready.stdin && self.flush_until.is_none() {
                match stdin.read(&mut chunk) {
                    Ok(0) => self.start_flush(&mut splitter),
                    Ok(n) => splitter.feed(&chunk[..n], |line| self.take_line(line)),
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                    Err(err) => {
                        tracing::error!("cannot read stdin ({err}): treating it as end of input");
                        self.start_flush(&mut splitter);
                    }
                }
                self.flush_echo();
            }
            if ready.peer {
                self.check_peer();
            }
        }
    }

    /// Waits for the next event or deadline; says which descriptors are ready.
    fn wait(&self, stdin: &File, signals: &UnixStream) -> Result<Ready, String> {
        // A collector that is up but slower than the input slows the input down (the
        // service blocks in write, as with a stalled stdout); only one that is
        // unreachable (or stalled) makes lines drop.
        let connected = matches!(self.connection, Connection::Up(_));
        let reading = self.flush_until.is_none() && (!self.backlog.is_full() || self.unreachable());
        let mut watches = vec![Watch::new(signals.as_fd(), sys::POLLIN)];
        if reading {
            watches.push(Watch::new(stdin.as_fd(), sys::POLLIN));
        }
        if let Connection::Up(link) = &self.connection {
            let mut events = sys::POLLIN | sys::POLLRDHUP;
            if link.unwritten_bytes() > 0 {
                events |= sys::POLLOUT;
            }
            watches.push(Watch::new(link.fd(), events));
        }
        let timeout = self.next_deadline().map(|d| d - Instant::now().min(d));
        sys::poll(&mut watches, timeout).map_err(|e| format!("poll failed: {e}"))?;
        let closed = sys::POLLHUP | sys::POLLERR;
        Ok(Ready {
            signal: watches[0].fired(sys::POLLIN),
            stdin: reading && watches[1].fired(sys::POLLIN | closed),
            peer: connected
                && watches
                    .last()
                    .is_some_and(|w| w.fired(sys::POLLIN | sys::POLLRDHUP | closed)),
        })
    }

    /// One line of input: echoed, stamped now, framed, buffered.
    fn take_line(&mut self, line: &[u8]) {
        if let Some(out) = &mut self.echo {
            let written = out.write_all(line).and_then(|()| out.write_all(b"\n"));
            if let Err(err) = written {
                tracing::warn!("cannot write to stdout ({err}): no more echo");
                self.echo = None;
            }
        }
        let frame = self.header.frame(line, SystemTime::now());
        let dropped = self.backlog.push(frame, self.unreachable());
        self.note_drops(dropped);
    }

    /// Down, or up but stalled: lines may drop rather than wait.
    fn unreachable(&self) -> bool {
        match &self.connection {
            Connection::Down { .. } => true,
            Connection::Up(link) => link
                .waiting_since()
                .is_some_and(|since| since.elapsed() >= STALLED_AFTER),
        }
    }

    fn note_drops(&mut self, dropped: u64) {
        if dropped == 0 {
            return;
        }
        self.unreported_drops += dropped;
        if !self.dropping {
            self.dropping = true;
            tracing::warn!(
                "buffer full ({} lines, {} bytes): dropping the oldest lines until the collector takes them",
                self.config.buffer_lines,
                self.config.buffer_bytes
            );
        }
    }

    fn flush_echo(&mut self) {
        if let Some(out) = &mut self.echo
            && let Err(err) = out.flush()
        {
            tracing::warn!("cannot write to stdout ({err}): no more echo");
            self.echo = None;
        }
    }

    fn start_flush(&mut self, splitter: &mut LineSplitter) {
        if self.flush_until.is_some() {
            return;
        }
        splitter.finish(|line| self.take_line(line));
        self.flush_echo();
        self.flush_until = Some(Instant::now() + self.config.flush_timeout);
    }

    fn connect_when_due(&mut self) {
        let Connection::Down { retry_at, backoff } = self.connection else {
            return;
        };
        if Instant::now() < retry_at {
            return;
        }
        let target = &self.config.to;
        match Link::connect(target) {
            Ok(link) => {
                tracing::info!("connected to {}:{}", target.host, target.port);
                self.connection = Connection::Up(link);
            }
            Err(err) => {
                if backoff == BACKOFF_MIN {
                    tracing::warn!(
                        "cannot connect to {}:{} ({err}); retrying with backoff up to {BACKOFF_MAX:?}, {} lines buffered",
                        target.host,
                        target.port,
                        self.backlog.len()
                    );
                }
                self.connection = Connection::Down {
                    retry_at: Instant::now() + backoff,
                    backoff: (backoff * 2).min(BACKOFF_MAX),
                };
            }
        }
    }

    /// Moves lines to the link as the socket takes them, drop report first.
    fn send(&mut self) {
        // A stalled collector hears about the drops once it takes lines again.
        let stalled = self.unreachable();
        let Connection::Up(link) = &mut self.connection else {
            return;
        };
        if self.unreported_drops > 0 && !stalled {
            let count = std::mem::take(&mut self.unreported_drops);
            self.dropping = false;
            let notice =
                format!("logfwd: dropped {count} lines while the collector was unreachable");
            tracing::warn!("{notice}");
            link.push(self.header.frame(notice.as_bytes(), SystemTime::now()));
        }
        let mut result = Ok(());
        loop {
            while link.unwritten_bytes() < LINK_AHEAD
                && let Some(frame) = self.backlog.pop()
            {
                link.push(frame);
            }
            if let Err(lost) = link.write() {
                result = Err(lost);
                break;
            }
            // Stop when the socket is full, or when there is nothing left to send.
            if link.unwritten_bytes() > 0 || self.backlog.is_empty() {
                break;
            }
        }
        if result.is_ok()
            && let Err(err) = link.note_acknowledged()
        {
            result = Err(Lost::Failed(err));
        }
        if let Err(lost) = result {
            self.lose_connection(lost);
        }
    }

    fn check_peer(&mut self) {
        if let Connection::Up(link) = &mut self.connection
            && let Err(lost) = link.check_peer()
        {
            self.lose_connection(lost);
        }
    }

    fn lose_connection(&mut self, why: Lost) {
        let Connection::Up(link) = std::mem::replace(
            &mut self.connection,
            Connection::Down {
                retry_at: Instant::now(),
                backoff: BACKOFF_MIN,
            },
        ) else {
            return;
        };
        let unacknowledged = link.into_unacknowledged();
        let resent = unacknowledged.len();
        let dropped = self.backlog.requeue(unacknowledged.into_iter());
        self.note_drops(dropped);
        match why {
            Lost::Reset => {
                tracing::warn!("{why}; {resent} unacknowledged lines will be sent again")
            }
            _ => tracing::info!("{why}; {resent} unacknowledged lines will be sent again"),
        }
    }

    fn everything_delivered(&self) -> bool {
        let in_link = match &self.connection {
            Connection::Up(link) => link.unacknowledged(),
            Connection::Down { .. } => 0,
        };
        self.backlog.is_empty() && in_link == 0 && self.unreported_drops == 0
    }

    fn finish(&mut self) {
        if let Connection::Up(link) = std::mem::replace(
            &mut self.connection,
            Connection::Down {
                retry_at: Instant::now(),
                backoff: BACKOFF_MIN,
            },
        ) {
            link.finish();
        }
        self.flush_echo();
    }

    fn give_up(&mut self) {
        let in_link = match &self.connection {
            Connection::Up(link) => link.unacknowledged(),
            Connection::Down { .. } => 0,
        };
        let mut message = format!(
            "flush timeout ({:?}): {} lines not delivered to {}:{}",
            self.config.flush_timeout,
            self.backlog.len() + in_link,
            self.config.to.host,
            self.config.to.port
        );
        if self.unreported_drops > 0 {
            message += &format!(", {} more dropped earlier", self.unreported_drops);
        }
        tracing::warn!("{message}");
        self.flush_echo();
    }

    /// The earliest instant the loop must wake up without an event.
    fn next_deadline(&self) -> Option<Instant> {
        let connection = match &self.connection {
            Connection::Down { retry_at, .. } => Some(*retry_at),
            Connection::Up(link) if link.unacknowledged() > 0 => Some(Instant::now() + ACK_CHECK),
            Connection::Up(_) => None,
        };
        [connection, self.flush_until].into_iter().flatten().min()
    }
}

/// Empties the signal pipe (several signals may have written to it).
fn drain(signals: &mut UnixStream) {
    let mut bytes = [0u8; 64];
    while matches!(signals.read(&mut bytes), Ok(n) if n > 0) {}
}

/// A descriptor of our own for stdin or stdout (std's handles are line-buffered and
/// locked; ours is read and written in large chunks).
fn dup_stdio(fd: std::os::fd::BorrowedFd, name: &str) -> Result<File, String> {
    fd.try_clone_to_owned()
        .map(File::from)
        .map_err(|e| format!("cannot use {name}: {e}"))
}

fn this_hostname() -> Result<String, String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_err(|e| format!("cannot read this host's name from /proc/sys/kernel/hostname ({e}); pass --hostname NAME"))?;
    let name = name.trim();
    let printable =
        !name.is_empty() && name.len() <= 255 && name.bytes().all(|b| (33..=126).contains(&b));
    if !printable {
        return Err(format!(
            "this host's name {name:?} cannot be a syslog HOSTNAME; pass --hostname NAME"
        ));
    }
    Ok(name.to_string())
}
