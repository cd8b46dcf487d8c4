//! Signal plumbing: which signals pidvisor takes, how they reach the event loop, how a
//! child gets a clean signal state back before `exec`, signal names, and the `--rewrite`
//! table of signals sent in place of others.
//!
//! Every signal pidvisor acts on is blocked and read synchronously from a `signalfd`, so a
//! signal that arrives before the main command exists waits in the queue instead of being
//! lost, and no code runs in signal-handler context. Blocked signals are also what lets
//! PID 1 of a namespace receive them at all: the kernel drops signals to an init that has
//! neither a handler nor the signal blocked.
//!
//! Crash signals (SEGV, BUS, FPE, ILL, ABRT, TRAP, SYS) are never blocked: a fault in
//! pidvisor must not be swallowed. SIGTTIN and SIGTTOU are ignored so that pidvisor is
//! never stopped when it touches the terminal while its child is the foreground job.
//!
//! The child's signal state: the mask is emptied, and SIGTTIN/SIGTTOU get back the
//! disposition pidvisor was started with. Signals that the container's creator set to
//! "ignore" stay ignored (exec keeps them, as POSIX and `nohup` users expect); all others
//! are at their default, because exec resets caught signals and pidvisor catches none.
//! SIGPIPE is always back at its default (the Rust runtime ignores it for pidvisor itself).

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use libc::c_int;

/// Signals forwarded to the main command (the real-time ones are added at run time, since
/// their range is only known then).
const FORWARDED: [c_int; 8] = [
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
    libc::SIGCONT,
];

/// Signals that pidvisor ignores for itself and restores for its children.
const IGNORED_BY_PIDVISOR: [c_int; 2] = [libc::SIGTTIN, libc::SIGTTOU];

/// True if `signo` is one that pidvisor passes on to the main command.
pub fn is_forwarded(signo: c_int) -> bool {
    FORWARDED.contains(&signo) || (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&signo)
}

/// True if `signo` asks pidvisor to shut the container down.
pub fn is_shutdown_request(signo: c_int) -> bool {
    matches!(signo, libc::SIGTERM | libc::SIGINT | libc::SIGQUIT)
}

/// One signal taken from the queue.
#[derive(Debug, Clone, Copy)]
pub struct Received {
    pub signo: c_int,
    /// Pid of the sender as seen from our namespace; 0 for the kernel or an outside sender.
    pub sender: u32,
}

/// Owns the signalfd and remembers the signal state pidvisor was started with.
pub struct SignalQueue {
    fd: OwnedFd,
    original_mask: libc::sigset_t,
    original_actions: [libc::sigaction; IGNORED_BY_PIDVISOR.len()],
}

impl SignalQueue {
    /// Blocks every signal pidvisor handles and opens the signalfd that delivers them.
    /// Called first thing in `main`, before anything can send us a signal we care about.
    pub fn install() -> io::Result<SignalQueue> {
        let mut set = empty_set();
        for signo in FORWARDED
            .into_iter()
            .chain(libc::SIGRTMIN()..=libc::SIGRTMAX())
            .chain([libc::SIGCHLD])
        {
            // SAFETY: `set` is an initialised sigset_t; sigaddset only writes into it.
            unsafe { libc::sigaddset(&mut set, signo) };
        }
        let mut original_mask = empty_set();
        // SAFETY: both pointers refer to valid, initialised sigset_t values.
        let rc = unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, &mut original_mask) };
        if rc != 0 {
            return Err(syscall_error("sigprocmask"));
        }

        // SAFETY: an all-zero sigaction is a valid value (SIG_DFL, empty mask).
        let mut original_actions: [libc::sigaction; IGNORED_BY_PIDVISOR.len()] =
            unsafe { MaybeUninit::zeroed().assume_init() };
        for (signo, original) in IGNORED_BY_PIDVISOR.iter().zip(original_actions.iter_mut()) {
            // SAFETY: as above, a zeroed sigaction with SIG_IGN is valid.
            let mut ignore: libc::sigaction = unsafe { MaybeUninit::zeroed().assume_init() };
            ignore.sa_sigaction = libc::SIG_IGN;
            // SAFETY: valid signal number and pointers to valid sigaction values.
            if unsafe { libc::sigaction(*signo, &ignore, original) } != 0 {
                return Err(syscall_error("sigaction"));
            }
        }

        // SAFETY: `set` is valid; -1 asks for a new descriptor.
        let raw = unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
        if raw < 0 {
            return Err(syscall_error("signalfd"));
        }
        // SAFETY: signalfd just returned this descriptor and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(SignalQueue {
            fd,
            original_mask,
            original_actions,
        })
    }

    /// Takes the next pending signal, or `None` once the queue is empty.
    pub fn next(&self) -> io::Result<Option<Received>> {
        // SAFETY: signalfd_siginfo is plain old data; all-zero is valid.
        let mut info: libc::signalfd_siginfo = unsafe { MaybeUninit::zeroed().assume_init() };
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        loop {
            // SAFETY: we read at most `size` bytes into `info`, which is `size` bytes long.
            let n = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    (&mut info as *mut libc::signalfd_siginfo).cast(),
                    size,
                )
            };
            if n == size as isize {
                return Ok(Some(Received {
                    signo: info.ssi_signo as c_int,
                    sender: info.ssi_pid,
                }));
            }
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EAGAIN) => return Ok(None),
                Some(libc::EINTR) => continue,
                _ => return Err(err),
            }
        }
    }

    /// What a freshly forked child needs to restore its signal state.
    pub fn child_reset(&self) -> ChildSignalReset {
        ChildSignalReset {
            original_actions: self.original_actions,
        }
    }

    /// True if pidvisor was started with some signals blocked: worth a note in the log,
    /// since children get an empty mask instead.
    pub fn started_with_blocked_signals(&self) -> bool {
        (1..=libc::SIGRTMAX()).any(|signo| {
            // SAFETY: the set is initialised; sigismember only reads.
            unsafe { libc::sigismember(&self.original_mask, signo) == 1 }
        })
    }
}

impl AsFd for SignalQueue {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The signal state a child gets back before exec (a plain copy, so that it can move into
/// the code that runs between fork and exec).
#[derive(Clone, Copy)]
pub struct ChildSignalReset {
    original_actions: [libc::sigaction; IGNORED_BY_PIDVISOR.len()],
}

impl ChildSignalReset {
    /// The dispositions a child sets before it empties its signal mask, as (signal,
    /// `SIG_DFL` or `SIG_IGN`): SIGPIPE back to the default (Rust's runtime ignores it in
    /// pidvisor), and the signals pidvisor ignores back to what pidvisor found. A handler
    /// cannot have been found (none survives the `exec` that started pidvisor); it would
    /// count as the default.
    pub fn dispositions(&self) -> [(c_int, usize); 3] {
        let found = |i: usize| match self.original_actions[i].sa_sigaction {
            libc::SIG_IGN => libc::SIG_IGN,
            _ => libc::SIG_DFL,
        };
        [
            (libc::SIGPIPE, libc::SIG_DFL),
            (IGNORED_BY_PIDVISOR[0], found(0)),
            (IGNORED_BY_PIDVISOR[1], found(1)),
        ]
    }
}

/// Sends `signo` to `pid` (a negative pid means a process group, -1 means everyone).
/// ESRCH is not an error for the caller to worry about: the target is already gone.
pub fn send(pid: i32, signo: c_int) -> io::Result<()> {
    // SAFETY: kill has no memory-safety preconditions.
    if unsafe { libc::kill(pid, signo) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A signal by name or number: `TERM`, `SIGTERM`, `sigterm`, `15`, `RTMIN+3`, `SIGRTMIN+3`.
pub fn parse(text: &str) -> Option<c_int> {
    let text = text.trim();
    let all = 1..=libc::SIGRTMAX();
    if let Ok(signo) = text.parse::<i32>() {
        return all.contains(&signo).then_some(signo);
    }
    let upper = text.to_ascii_uppercase();
    let mut full = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    if full == "SIGRTMIN" {
        full.push_str("+0");
    }
    all.into_iter().find(|&signo| name(signo) == full)
}

/// Signals sent in place of others (dumb-init's `--rewrite`), for the signals pidvisor
/// forwards and the SIGTERM it sends the main command at shutdown: `TERM:QUIT` makes
/// `docker stop` a graceful stop for nginx; `TO` = 0 drops the signal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rewrites(Vec<(c_int, c_int)>);

impl Rewrites {
    /// Parses `FROM:TO[,FROM:TO...]`, each a name or number (`TERM:QUIT`, `WINCH:0`).
    /// `FROM` must be a signal pidvisor forwards; a later pair for the same `FROM` wins.
    pub fn parse(text: &str) -> Result<Rewrites, String> {
        let mut rewrites = Rewrites::default();
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((from, to)) = pair.split_once(':') else {
                return Err(format!("'{pair}' is not FROM:TO, e.g. TERM:QUIT"));
            };
            let from = parse(from).ok_or_else(|| format!("'{from}' is not a signal"))?;
            if !is_forwarded(from) {
                return Err(format!(
                    "{} is not a signal pidvisor forwards (HUP INT QUIT TERM USR1 USR2 \
                     WINCH CONT and the real-time ones), so it cannot be rewritten",
                    name(from)
                ));
            }
            let to = match to.trim() {
                "0" => 0,
                to => parse(to).ok_or_else(|| format!("'{to}' is not a signal (or 0)"))?,
            };
            rewrites.set(from, to);
        }
        Ok(rewrites)
    }

    /// These rewrites, then `later`'s, which win for the same `FROM`.
    pub fn and(mut self, later: Rewrites) -> Rewrites {
        for (from, to) in later.0 {
            self.set(from, to);
        }
        self
    }

    fn set(&mut self, from: c_int, to: c_int) {
        self.0.retain(|&(f, _)| f != from);
        self.0.push((from, to));
    }

    /// The signal to send in place of `signo`; `None` when it is dropped.
    pub fn apply(&self, signo: c_int) -> Option<c_int> {
        match self.0.iter().find(|&&(from, _)| from == signo) {
            Some(&(_, 0)) => None,
            Some(&(_, to)) => Some(to),
            None => Some(signo),
        }
    }
}

/// A readable name: `SIGTERM`, `SIGRTMIN+3`, or the number.
pub fn name(signo: c_int) -> String {
    let known = match signo {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGCHLD => "SIGCHLD",
        libc::SIGCONT => "SIGCONT",
        libc::SIGSTOP => "SIGSTOP",
        libc::SIGTSTP => "SIGTSTP",
        libc::SIGTTIN => "SIGTTIN",
        libc::SIGTTOU => "SIGTTOU",
        libc::SIGURG => "SIGURG",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGVTALRM => "SIGVTALRM",
        libc::SIGPROF => "SIGPROF",
        libc::SIGWINCH => "SIGWINCH",
        libc::SIGIO => "SIGIO",
        libc::SIGPWR => "SIGPWR",
        libc::SIGSYS => "SIGSYS",
        _ if (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&signo) => {
            return format!("SIGRTMIN+{}", signo - libc::SIGRTMIN());
        }
        _ => return format!("signal {signo}"),
    };
    known.to_owned()
}

fn empty_set() -> libc::sigset_t {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the whole set.
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        set.assume_init()
    }
}

fn syscall_error(call: &str) -> io::Error {
    let err = io::Error::last_os_error();
    io::Error::new(err.kind(), format!("{call}: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_signals_by_name_and_number() {
        for text in ["TERM", "SIGTERM", "sigterm", " 15 "] {
            assert_eq!(parse(text), Some(libc::SIGTERM), "{text}");
        }
        assert_eq!(parse("RTMIN+3"), Some(libc::SIGRTMIN() + 3));
        assert_eq!(parse("SIGRTMIN+3"), Some(libc::SIGRTMIN() + 3));
        assert_eq!(parse("rtmin"), Some(libc::SIGRTMIN()));
        assert_eq!(parse("KILL"), Some(libc::SIGKILL));
        for text in ["", "NOPE", "0", "-15", "999", "SIG", "RTMIN+99"] {
            assert_eq!(parse(text), None, "{text}");
        }
    }

    #[test]
    fn rewrites_replace_drop_or_keep_a_signal() {
        let rewrites = Rewrites::parse("TERM:QUIT, usr1:0,WINCH:USR2,WINCH:HUP").unwrap();
        assert_eq!(rewrites.apply(libc::SIGTERM), Some(libc::SIGQUIT));
        assert_eq!(rewrites.apply(libc::SIGUSR1), None);
        assert_eq!(
            rewrites.apply(libc::SIGWINCH),
            Some(libc::SIGHUP),
            "the last one wins"
        );
        assert_eq!(rewrites.apply(libc::SIGHUP), Some(libc::SIGHUP));
        assert_eq!(Rewrites::parse("").unwrap(), Rewrites::default());
        let both = Rewrites::parse("TERM:QUIT,HUP:0")
            .unwrap()
            .and(Rewrites::parse("TERM:INT").unwrap());
        assert_eq!(both.apply(libc::SIGTERM), Some(libc::SIGINT));
        assert_eq!(both.apply(libc::SIGHUP), None);
        for (text, says) in [
            ("TERM", "not FROM:TO"),
            ("TERM:NOPE", "'NOPE' is not a signal"),
            ("NOPE:TERM", "'NOPE' is not a signal"),
            ("KILL:TERM", "SIGKILL is not a signal pidvisor forwards"),
            ("CHLD:0", "SIGCHLD is not a signal pidvisor forwards"),
        ] {
            let err = Rewrites::parse(text).unwrap_err();
            assert!(err.contains(says), "{text}: {err}");
        }
    }

    #[test]
    fn forwards_the_documented_set_and_not_crash_signals() {
        for signo in FORWARDED {
            assert!(is_forwarded(signo), "{}", name(signo));
        }
        assert!(is_forwarded(libc::SIGRTMIN()));
        assert!(is_forwarded(libc::SIGRTMAX()));
        for signo in [libc::SIGSEGV, libc::SIGBUS, libc::SIGKILL, libc::SIGCHLD] {
            assert!(!is_forwarded(signo), "{}", name(signo));
        }
    }

    #[test]
    fn only_term_int_quit_shut_down() {
        assert!(is_shutdown_request(libc::SIGTERM));
        assert!(is_shutdown_request(libc::SIGINT));
        assert!(is_shutdown_request(libc::SIGQUIT));
        assert!(!is_shutdown_request(libc::SIGHUP));
        assert!(!is_shutdown_request(libc::SIGUSR1));
    }

    #[test]
    fn names_real_time_signals_relative_to_sigrtmin() {
        assert_eq!(name(libc::SIGTERM), "SIGTERM");
        assert_eq!(name(libc::SIGRTMIN() + 3), "SIGRTMIN+3");
        assert_eq!(name(0), "signal 0");
    }
}
