//! Command line and environment: turns `argv` and `PIDVISOR_*` variables into [`Options`].
//!
//! Parsing is pure (no I/O, no globals) so that it is unit-tested directly. Precedence is
//! the usual one: built-in default < environment variable < command-line flag.
//!
//! The first argument that is not an option starts the main command, with or without a
//! `--` before it, so that `ENTRYPOINT ["/init"]` plus Docker's `CMD ["nginx", "-g", ...]`
//! works unchanged: everything from there on belongs to the main command, even if it
//! looks like one of our flags.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::control::protocol::DEFAULT_SOCKET;
use crate::duration::parse_duration;
use crate::init::signals::Rewrites;
use crate::output::logging::{LogFormat, LogLevel};

mod s6_env;

/// Default time between the polite SIGTERM and the SIGKILL at shutdown: well under
/// Docker's 10-second `docker stop` grace, so that our SIGKILL comes before Docker's.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);

/// Where services live unless told otherwise (s6-overlay's place for them).
pub const DEFAULT_SERVICES_DIR: &str = "/etc/services.d";

/// The range `PIDVISOR_TIME_SCALE` accepts: a thousand times faster to a thousand slower.
pub const TIME_SCALE_RANGE: std::ops::RangeInclusive<f64> = 0.001..=1000.0;

/// What the user asked for.
// Made once per run and moved once: boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, PartialEq, Eq)]
pub enum Invocation {
    /// Run as init, optionally with a main command.
    Run(Box<Options>),
    /// Print the help text and exit 0.
    Help,
    /// Print the version and exit 0.
    Version,
    /// Validate a services folder and exit 0 (fine) or 1 (problems).
    Check(PathBuf),
    /// Create the symlinks for pidvisorctl and the s6 commands in a folder, and exit.
    InstallLinks(PathBuf),
}

/// Everything that shapes a run.
#[derive(Debug, PartialEq, Eq)]
pub struct Options {
    pub log_level: LogLevel,
    pub log_format: LogFormat,
    /// Time that remaining processes get between SIGTERM and SIGKILL at shutdown.
    pub grace: Duration,
    /// Time between the first TERM/INT/QUIT and the start of the shutdown, reported as
    /// unhealthy (draining), so that load balancers stop sending requests first.
    pub shutdown_delay: Duration,
    pub forward_to: ForwardTarget,
    /// Signals sent in place of others to the main command (or the services).
    pub rewrite: Rewrites,
    /// `services.d`: one folder per supervised service.
    pub services_dir: PathBuf,
    /// `cont-init.d`: scripts run once, in name order, before any service starts.
    pub init_dir: PathBuf,
    /// `cont-finish.d`: scripts run in name order after the services have stopped.
    pub finish_dir: PathBuf,
    /// Time each `cont-finish.d` script may take.
    pub finish_timeout: Duration,
    /// Go on when a `cont-init.d` script fails, instead of stopping the container.
    pub init_continue_on_error: bool,
    /// The control socket (`pidvisorctl`).
    pub socket: PathBuf,
    /// Where to write every life-cycle event as a JSON line, if anywhere.
    pub events_file: Option<PathBuf>,
    /// Multiplies every restart delay and the restart window (for tests of a policy).
    pub time_scale: TimeScale,
    /// `NOTIFY_SOCKET`: where to send sd_notify messages, and whether the children keep
    /// the variable (`--keep-notify-socket`).
    pub notify_socket: Option<OsString>,
    pub keep_notify_socket: bool,
    /// Put each service in a cgroup of its own where the cgroup v2 tree is writable.
    pub cgroups: bool,
    /// The main command and its arguments; empty means "run until told to stop".
    pub command: Vec<OsString>,
    /// The longest the main command waits for the services to be ready (None: no limit).
    pub main_wait: Option<Duration>,
    /// The stop-timeout of services whose service.toml sets none (S6_SERVICES_GRACETIME).
    pub services_stop_timeout: Option<Duration>,
    /// s6-overlay's runtime folder to write (`/var/run/s6`); None when turned off.
    pub s6_dir: Option<PathBuf>,
    /// What pidvisor could not honour (S6_* variables), said once it logs.
    pub notes: Vec<String>,
}

/// A factor for restart delays and windows, validated to lie in [`TIME_SCALE_RANGE`] (so
/// it is finite, and comparing it for equality is sound).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeScale(f64);

impl Eq for TimeScale {}

impl TimeScale {
    pub const ONE: TimeScale = TimeScale(1.0);

    pub fn get(self) -> f64 {
        self.0
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            log_level: LogLevel::Info,
            log_format: LogFormat::Text,
            grace: DEFAULT_GRACE,
            shutdown_delay: Duration::ZERO,
            forward_to: ForwardTarget::Group,
            rewrite: Rewrites::default(),
            services_dir: PathBuf::from(DEFAULT_SERVICES_DIR),
            init_dir: PathBuf::from("/etc/cont-init.d"),
            finish_dir: PathBuf::from("/etc/cont-finish.d"),
            finish_timeout: Duration::from_secs(5),
            init_continue_on_error: false,
            socket: PathBuf::from(DEFAULT_SOCKET),
            events_file: None,
            time_scale: TimeScale::ONE,
            notify_socket: None,
            keep_notify_socket: false,
            cgroups: true,
            command: Vec::new(),
            main_wait: None,
            services_stop_timeout: None,
            s6_dir: Some(PathBuf::from(crate::s6::DEFAULT_S6_DIR)),
            notes: Vec::new(),
        }
    }
}

/// Where forwarded signals go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardTarget {
    /// The main command's whole process group: a shell wrapper and the program it started
    /// both hear the signal (dumb-init's default).
    Group,
    /// The main command's pid only (tini's default).
    Pid,
}

/// A usage error: one line, printed before exiting with code 2.
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (see 'pidvisor --help')", self.0)
    }
}

pub const HELP: &str = "\
pidvisor: a minimal PID 1 for containers. It reaps zombies, forwards signals, supervises
a folder of services, and runs an optional main command whose exit code becomes the
container's.

Usage: pidvisor [OPTIONS] [--] [CMD [ARGS...]]
       pidvisor --check [DIR]    validate a services folder (default: the services dir)

Without CMD, pidvisor runs until it receives SIGTERM, SIGINT or SIGQUIT.

Options (each also settable by the environment variable shown):
  -l, --log-level LEVEL   error, warn, info, debug or trace      [PIDVISOR_LOG_LEVEL, default info]
      --log-format FMT    text or json                           [PIDVISOR_LOG_FORMAT, default text]
  -g, --grace DURATION    time between SIGTERM and SIGKILL at shutdown, e.g. 500ms, 5s, 1m
                                                                 [PIDVISOR_GRACE, default 5s]
      --shutdown-delay DURATION
                          on TERM/INT/QUIT, first report unhealthy (draining) for DURATION,
                          then shut down; a second signal or CMD's exit skips the wait
                                                      [PIDVISOR_SHUTDOWN_DELAY, default 0]
      --forward-to WHERE  group: forward signals to CMD's process group; pid: to CMD only
                                                                 [PIDVISOR_FORWARD_TO, default group]
      --rewrite FROM:TO   send TO in place of FROM, e.g. TERM:QUIT (a graceful stop for nginx);
                          TO 0 drops FROM; comma-separated or repeated  [PIDVISOR_REWRITE]
  -s, --services-dir DIR  one folder per service: DIR/<name>/run, finish, down, log/run,
                          service.toml                [PIDVISOR_SERVICES_DIR, default /etc/services.d]
      --init-dir DIR      scripts run once, in name order, before the services start
                                                      [PIDVISOR_INIT_DIR, default /etc/cont-init.d]
      --init-continue-on-error
                          go on when an init script fails (default: stop the container)
                                                      [PIDVISOR_INIT_CONTINUE_ON_ERROR=1]
      --finish-dir DIR    scripts run in name order after the services have stopped
                                                      [PIDVISOR_FINISH_DIR, default /etc/cont-finish.d]
      --finish-timeout DURATION
                          time each finish script may take  [PIDVISOR_FINISH_TIMEOUT, default 5s]
      --socket PATH       the control socket for pidvisorctl (mode 0600; root and pidvisor's
                          own user only)        [PIDVISOR_SOCKET, default /run/pidvisor/control.sock]
      --events-file PATH  write every life-cycle event to PATH as JSON lines, from the first
                          one                                      [PIDVISOR_EVENTS_FILE, default none]
      --time-scale FACTOR multiply every restart delay and restart-window by FACTOR (0.001 to
                          1000), e.g. 0.01 to test a restart policy fast  [PIDVISOR_TIME_SCALE, default 1]
      --main-wait DURATION
                          start CMD once the services are ready, or after DURATION (0: once
                          they are started)                [PIDVISOR_MAIN_WAIT, default none]
      --keep-notify-socket
                          let the children see NOTIFY_SOCKET (default: pidvisor itself sends
                          READY=1, STOPPING=1 and STATUS= there, and removes the variable)
                                                      [PIDVISOR_KEEP_NOTIFY_SOCKET=1]
      --no-cgroups        process groups only, even where a cgroup per service could be made
                          (see README, Escaped processes)  [PIDVISOR_NO_CGROUPS=1]
      --check [DIR]       check a services folder without starting anything; exit 0 or 1
      --install-links DIR create DIR/pidvisorctl, with-contenv, s6-svc, s6-svstat, s6-svwait,
                          s6-svscanctl, s6-setuidgid, s6-envuidgid: links to this binary; exit
  -h, --help              print this help and exit
  -V, --version           print the version and exit

Signals: HUP INT QUIT TERM USR1 USR2 WINCH CONT and the real-time signals are forwarded
to CMD (without CMD: all but TERM, INT and QUIT, to every running service but the log/run
loggers). TERM, INT and QUIT also start the shutdown: CMD stops, then the services in
reverse dependency order, then the finish scripts run, then every remaining process gets
SIGTERM, and SIGKILL once the grace time is over; a second TERM, INT or QUIT skips to
SIGKILL.

Output: the services' lines reach stdout and stderr whole, prefixed with their name. A
reader that stops reading never stalls pidvisor: the services wait instead, and at exit
pidvisor waits at most the grace time for it.

Control: the same binary, run as 'pidvisorctl' (ln -s /init /usr/bin/pidvisorctl), shows
and drives the services over the control socket: pidvisorctl status, start, stop, restart,
signal, wait, shutdown, events; 'pidvisorctl health' and 'ping' answer health checks
(HEALTHCHECK CMD pidvisorctl health). See 'pidvisorctl --help'.

s6-overlay v2 images: run as with-contenv, s6-svc, s6-svstat, s6-svwait, s6-svscanctl,
s6-setuidgid or s6-envuidgid (pidvisor --install-links /usr/bin), it is that s6 command; it writes
/var/run/s6/container_environment and /var/run/s6/services/NAME [PIDVISOR_S6_COMPAT=0: not;
with no service and no init script: only where with-contenv is installed]
and honours the S6_* variables whose PIDVISOR_* one is unset. See the README.

Exit code: CMD's exit code; 128+N if CMD died of signal N; 127 if CMD was not found;
126 if it could not be executed; a failed init script's or critical service's code;
2 for a usage error; 0 after a requested shutdown without CMD.
";

/// Reads the environment through `env` (so tests need not touch the real one), then
/// the arguments (without the program name).
pub fn parse<I, E>(args: I, env: E) -> Result<Invocation, UsageError>
where
    I: IntoIterator<Item = OsString>,
    E: Fn(&str) -> Option<String>,
{
    let mut options = Options::default();
    apply_env(&mut options, &env)?;

    // `--check [DIR]`: `Some(None)` until DIR (the next word that is not an option) comes.
    let mut check: Option<Option<PathBuf>> = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if check == Some(None) && !arg.as_encoded_bytes().starts_with(b"-") {
            check = Some(Some(PathBuf::from(arg)));
            continue;
        }
        let Some(text) = arg.to_str() else {
            // Not UTF-8, so not one of our flags: the main command starts here.
            options.command.push(arg);
            options.command.extend(args);
            break;
        };
        if !text.starts_with('-') || text == "-" {
            options.command.push(arg);
            options.command.extend(args);
            break;
        }
        if text == "--" {
            options.command.extend(args);
            break;
        }
        let (flag, inline_value) = match text.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_owned())),
            _ => (text, None),
        };
        let mut value = |name: &str| -> Result<String, UsageError> {
            if let Some(value) = inline_value.clone() {
                return Ok(value);
            }
            args.next()
                .and_then(|v| v.into_string().ok())
                .ok_or_else(|| UsageError(format!("{name} needs a value")))
        };
        match flag {
            "-h" | "--help" => return Ok(Invocation::Help),
            "-V" | "--version" => return Ok(Invocation::Version),
            "-l" | "--log-level" => options.log_level = parse_log_level(&value(flag)?, flag)?,
            "--log-format" => options.log_format = parse_log_format(&value(flag)?, flag)?,
            "-g" | "--grace" => options.grace = parse_grace(&value(flag)?, flag)?,
            "--shutdown-delay" => options.shutdown_delay = parse_grace(&value(flag)?, flag)?,
            "--forward-to" => options.forward_to = parse_forward_target(&value(flag)?, flag)?,
            "--rewrite" => {
                let more = parse_rewrites(&value(flag)?, flag)?;
                options.rewrite = std::mem::take(&mut options.rewrite).and(more);
            }
            "-s" | "--services-dir" => options.services_dir = PathBuf::from(value(flag)?),
            "--init-dir" => options.init_dir = PathBuf::from(value(flag)?),
            "--finish-dir" => options.finish_dir = PathBuf::from(value(flag)?),
            "--finish-timeout" => options.finish_timeout = parse_grace(&value(flag)?, flag)?,
            "--init-continue-on-error" => options.init_continue_on_error = true,
            "--keep-notify-socket" => options.keep_notify_socket = true,
            "--no-cgroups" => options.cgroups = false,
            "--socket" => options.socket = PathBuf::from(value(flag)?),
            "--events-file" => options.events_file = Some(PathBuf::from(value(flag)?)),
            "--time-scale" => options.time_scale = parse_time_scale(&value(flag)?, flag)?,
            "--main-wait" => options.main_wait = parse_main_wait(&value(flag)?, flag)?,
            "--check" => check = Some(inline_value.map(PathBuf::from)),
            "--install-links" => return Ok(Invocation::InstallLinks(PathBuf::from(value(flag)?))),
            _ => return Err(UsageError(format!("unknown option '{text}'"))),
        }
    }
    if let Some(dir) = check {
        if !options.command.is_empty() {
            let extra = options.command[0].to_string_lossy();
            return Err(UsageError(format!(
                "--check takes one folder, not also '{extra}'"
            )));
        }
        return Ok(Invocation::Check(dir.unwrap_or(options.services_dir)));
    }
    Ok(Invocation::Run(Box::new(options)))
}

fn apply_env<E>(options: &mut Options, env: &E) -> Result<(), UsageError>
where
    E: Fn(&str) -> Option<String>,
{
    s6_env::apply(options, env)?;
    let var = |name: &str| env(name).filter(|v| !v.is_empty());
    if let Some(v) = var("PIDVISOR_MAIN_WAIT") {
        options.main_wait = parse_main_wait(&v, "PIDVISOR_MAIN_WAIT")?;
    }
    if let Some(v) = var("PIDVISOR_LOG_LEVEL") {
        options.log_level = parse_log_level(&v, "PIDVISOR_LOG_LEVEL")?;
    }
    if let Some(v) = var("PIDVISOR_LOG_FORMAT") {
        options.log_format = parse_log_format(&v, "PIDVISOR_LOG_FORMAT")?;
    }
    if let Some(v) = var("PIDVISOR_GRACE") {
        options.grace = parse_grace(&v, "PIDVISOR_GRACE")?;
    }
    if let Some(v) = var("PIDVISOR_SHUTDOWN_DELAY") {
        options.shutdown_delay = parse_grace(&v, "PIDVISOR_SHUTDOWN_DELAY")?;
    }
    if let Some(v) = var("PIDVISOR_FORWARD_TO") {
        options.forward_to = parse_forward_target(&v, "PIDVISOR_FORWARD_TO")?;
    }
    if let Some(v) = var("PIDVISOR_REWRITE") {
        options.rewrite = parse_rewrites(&v, "PIDVISOR_REWRITE")?;
    }
    if let Some(v) = var("PIDVISOR_SERVICES_DIR") {
        options.services_dir = PathBuf::from(v);
    }
    if let Some(v) = var("PIDVISOR_INIT_DIR") {
        options.init_dir = PathBuf::from(v);
    }
    if let Some(v) = var("PIDVISOR_FINISH_DIR") {
        options.finish_dir = PathBuf::from(v);
    }
    if let Some(v) = var("PIDVISOR_FINISH_TIMEOUT") {
        options.finish_timeout = parse_grace(&v, "PIDVISOR_FINISH_TIMEOUT")?;
    }
    if let Some(v) = var("PIDVISOR_SOCKET") {
        options.socket = PathBuf::from(v);
    }
    if let Some(v) = var("PIDVISOR_EVENTS_FILE") {
        options.events_file = Some(PathBuf::from(v));
    }
    if let Some(v) = var("PIDVISOR_TIME_SCALE") {
        options.time_scale = parse_time_scale(&v, "PIDVISOR_TIME_SCALE")?;
    }
    if let Some(v) = var("NOTIFY_SOCKET") {
        options.notify_socket = Some(OsString::from(v));
    }
    if let Some(v) = var("PIDVISOR_KEEP_NOTIFY_SOCKET") {
        options.keep_notify_socket = parse_bool(&v, "PIDVISOR_KEEP_NOTIFY_SOCKET")?;
    }
    if let Some(v) = var("PIDVISOR_NO_CGROUPS") {
        options.cgroups = !parse_bool(&v, "PIDVISOR_NO_CGROUPS")?;
    }
    if let Some(v) = var("PIDVISOR_INIT_CONTINUE_ON_ERROR") {
        options.init_continue_on_error = parse_bool(&v, "PIDVISOR_INIT_CONTINUE_ON_ERROR")?;
    }
    Ok(())
}

fn parse_log_level(value: &str, source: &str) -> Result<LogLevel, UsageError> {
    match value.to_ascii_lowercase().as_str() {
        "error" => Ok(LogLevel::Error),
        "warn" | "warning" => Ok(LogLevel::Warn),
        "info" => Ok(LogLevel::Info),
        "debug" => Ok(LogLevel::Debug),
        "trace" => Ok(LogLevel::Trace),
        _ => Err(UsageError(format!(
            "{source}: '{value}' is not a log level; use error, warn, info, debug or trace"
        ))),
    }
}

fn parse_log_format(value: &str, source: &str) -> Result<LogFormat, UsageError> {
    match value.to_ascii_lowercase().as_str() {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err(UsageError(format!(
            "{source}: '{value}' is not a log format; use text or json"
        ))),
    }
}

fn parse_grace(value: &str, source: &str) -> Result<Duration, UsageError> {
    parse_duration(value).map_err(|reason| UsageError(format!("{source}: {reason}")))
}

/// `--main-wait`: a duration, or `none` for no limit (the default).
fn parse_main_wait(value: &str, source: &str) -> Result<Option<Duration>, UsageError> {
    match value.trim() {
        "none" => Ok(None),
        _ => parse_grace(value, source).map(Some),
    }
}

fn parse_time_scale(value: &str, source: &str) -> Result<TimeScale, UsageError> {
    match value.trim().parse::<f64>() {
        Ok(factor) if TIME_SCALE_RANGE.contains(&factor) => Ok(TimeScale(factor)),
        _ => Err(UsageError(format!(
            "{source}: '{value}' is not a time scale; use a factor from 0.001 to 1000, \
             e.g. 0.01 to make restart delays 100 times shorter"
        ))),
    }
}

fn parse_bool(value: &str, source: &str) -> Result<bool, UsageError> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(UsageError(format!(
            "{source}: '{value}' is not a yes/no value; use 1 or 0"
        ))),
    }
}

fn parse_rewrites(value: &str, source: &str) -> Result<Rewrites, UsageError> {
    Rewrites::parse(value).map_err(|reason| UsageError(format!("{source}: {reason}")))
}

fn parse_forward_target(value: &str, source: &str) -> Result<ForwardTarget, UsageError> {
    match value.to_ascii_lowercase().as_str() {
        "group" => Ok(ForwardTarget::Group),
        "pid" => Ok(ForwardTarget::Pid),
        _ => Err(UsageError(format!(
            "{source}: '{value}' is not a forward target; use group or pid"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    fn run(list: &[&str]) -> Options {
        match parse(args(list), |_| None) {
            Ok(Invocation::Run(options)) => *options,
            other => panic!("expected Run for {list:?}, got {other:?}"),
        }
    }

    #[test]
    fn no_arguments_means_defaults_and_no_command() {
        assert_eq!(run(&[]), Options::default());
    }

    #[test]
    fn command_without_double_dash_keeps_its_own_flags() {
        let options = run(&["nginx", "-g", "daemon off;"]);
        assert_eq!(options.command, args(&["nginx", "-g", "daemon off;"]));
        assert_eq!(options.grace, DEFAULT_GRACE);
    }

    #[test]
    fn double_dash_ends_options_even_before_dashed_words() {
        let options = run(&["-g", "2s", "--", "--help", "-V"]);
        assert_eq!(options.command, args(&["--help", "-V"]));
        assert_eq!(options.grace, Duration::from_secs(2));
    }

    #[test]
    fn long_options_accept_inline_values() {
        let options = run(&[
            "--grace=750ms",
            "--forward-to=pid",
            "--log-format=json",
            "true",
        ]);
        assert_eq!(options.grace, Duration::from_millis(750));
        assert_eq!(options.forward_to, ForwardTarget::Pid);
        assert_eq!(options.log_format, LogFormat::Json);
        assert_eq!(options.command, args(&["true"]));
    }

    #[test]
    fn service_folders_come_from_flags_or_environment() {
        let options = run(&[
            "-s",
            "/srv/services",
            "--init-dir=/srv/init",
            "--init-continue-on-error",
        ]);
        assert_eq!(options.services_dir, PathBuf::from("/srv/services"));
        assert_eq!(options.init_dir, PathBuf::from("/srv/init"));
        assert!(options.init_continue_on_error);
        let env = |name: &str| match name {
            "PIDVISOR_FINISH_DIR" => Some("/srv/finish".to_owned()),
            "PIDVISOR_FINISH_TIMEOUT" => Some("2s".to_owned()),
            "PIDVISOR_INIT_CONTINUE_ON_ERROR" => Some("yes".to_owned()),
            _ => None,
        };
        let Ok(Invocation::Run(options)) = parse(args(&[]), env) else {
            panic!("expected Run");
        };
        assert_eq!(options.finish_dir, PathBuf::from("/srv/finish"));
        assert_eq!(options.finish_timeout, Duration::from_secs(2));
        assert!(options.init_continue_on_error);
    }

    #[test]
    fn check_takes_an_optional_folder() {
        let check = |list: &[&str]| parse(args(list), |_| None);
        assert_eq!(
            check(&["--check"]),
            Ok(Invocation::Check(PathBuf::from(DEFAULT_SERVICES_DIR)))
        );
        assert_eq!(
            check(&["--check", "./services.d"]),
            Ok(Invocation::Check(PathBuf::from("./services.d")))
        );
        assert_eq!(
            check(&["-s", "/x", "--check"]),
            Ok(Invocation::Check(PathBuf::from("/x")))
        );
        // Options after --check are options, not its folder.
        assert_eq!(
            check(&["--check", "--services-dir", "/x"]),
            Ok(Invocation::Check(PathBuf::from("/x")))
        );
        assert_eq!(
            check(&["--check", "-l", "debug", "/y"]),
            Ok(Invocation::Check(PathBuf::from("/y")))
        );
        assert_eq!(
            check(&["--check=/z", "-s", "/x"]),
            Ok(Invocation::Check(PathBuf::from("/z")))
        );
        assert!(check(&["--check", "/y", "/z"]).is_err());
    }

    #[test]
    fn control_socket_events_file_and_time_scale() {
        let options = run(&[]);
        assert_eq!(options.socket, PathBuf::from(DEFAULT_SOCKET));
        assert_eq!(options.events_file, None);
        assert_eq!(options.time_scale, TimeScale::ONE);
        let options = run(&[
            "--socket=/tmp/s",
            "--events-file",
            "/tmp/e",
            "--time-scale",
            "0.01",
        ]);
        assert_eq!(options.socket, PathBuf::from("/tmp/s"));
        assert_eq!(options.events_file, Some(PathBuf::from("/tmp/e")));
        assert_eq!(options.time_scale.get(), 0.01);
        let env = |name: &str| match name {
            "PIDVISOR_SOCKET" => Some("/x.sock".to_owned()),
            "PIDVISOR_EVENTS_FILE" => Some("/x.jsonl".to_owned()),
            "PIDVISOR_TIME_SCALE" => Some("1000".to_owned()),
            _ => None,
        };
        let Ok(Invocation::Run(options)) = parse(args(&[]), env) else {
            panic!("expected Run");
        };
        assert_eq!(options.socket, PathBuf::from("/x.sock"));
        assert_eq!(options.events_file, Some(PathBuf::from("/x.jsonl")));
        assert_eq!(options.time_scale.get(), 1000.0);
    }

    #[test]
    fn time_scales_out_of_range_are_usage_errors() {
        for bad in ["0", "0.0001", "1001", "-1", "NaN", "inf", "fast", ""] {
            let result = parse(args(&["--time-scale", bad]), |_| None);
            assert!(
                result
                    .as_ref()
                    .is_err_and(|e| e.0.contains("0.001 to 1000")),
                "{bad}: {result:?}"
            );
        }
        let result = parse(args(&[]), |n| {
            (n == "PIDVISOR_TIME_SCALE").then(|| "5000".to_owned())
        });
        assert!(result.is_err_and(|e| e.0.starts_with("PIDVISOR_TIME_SCALE:")));
    }

    #[test]
    fn cgroups_are_on_unless_turned_off_by_flag_or_environment() {
        let run = |list: &[&str], value: Option<&str>| match parse(args(list), |n| {
            (n == "PIDVISOR_NO_CGROUPS").then(|| value.unwrap_or_default().to_owned())
        }) {
            Ok(Invocation::Run(options)) => options.cgroups,
            other => panic!("expected Run: {other:?}"),
        };
        assert!(run(&[], None));
        assert!(!run(&["--no-cgroups"], None));
        assert!(!run(&[], Some("1")));
        assert!(run(&[], Some("0")));
    }

    #[test]
    fn help_and_version_win() {
        assert_eq!(parse(args(&["-h"]), |_| None), Ok(Invocation::Help));
        assert_eq!(
            parse(args(&["--version"]), |_| None),
            Ok(Invocation::Version)
        );
    }

    #[test]
    fn environment_sets_defaults_and_flags_override_it() {
        let env = |name: &str| match name {
            "PIDVISOR_GRACE" => Some("3s".to_owned()),
            "PIDVISOR_LOG_LEVEL" => Some("debug".to_owned()),
            "PIDVISOR_FORWARD_TO" => Some("pid".to_owned()),
            _ => None,
        };
        let Ok(Invocation::Run(options)) = parse(args(&["--grace", "1s"]), env) else {
            panic!("expected Run");
        };
        assert_eq!(options.grace, Duration::from_secs(1));
        assert_eq!(options.log_level, LogLevel::Debug);
        assert_eq!(options.forward_to, ForwardTarget::Pid);
    }

    #[test]
    fn rewrites_come_from_the_environment_and_flags_add_to_them() {
        let env = |name: &str| (name == "PIDVISOR_REWRITE").then(|| "TERM:QUIT,HUP:0".to_owned());
        let list = ["--rewrite", "USR1:USR2", "--rewrite=HUP:INT", "sleep", "1"];
        let Ok(Invocation::Run(options)) = parse(args(&list), env) else {
            panic!("expected Run");
        };
        let rewrite = &options.rewrite;
        assert_eq!(rewrite.apply(libc::SIGTERM), Some(libc::SIGQUIT));
        assert_eq!(rewrite.apply(libc::SIGUSR1), Some(libc::SIGUSR2));
        assert_eq!(rewrite.apply(libc::SIGHUP), Some(libc::SIGINT));
        let err = parse(args(&["--rewrite", "KILL:TERM"]), |_| None).unwrap_err();
        assert!(
            err.0.starts_with("--rewrite: SIGKILL is not a signal"),
            "{}",
            err.0
        );
    }

    #[test]
    fn empty_environment_values_are_ignored() {
        let env = |name: &str| (name == "PIDVISOR_GRACE").then(String::new);
        assert!(matches!(parse(args(&[]), env), Ok(Invocation::Run(_))));
    }

    #[test]
    fn usage_errors_name_the_culprit() {
        let err = |list: &[&str]| parse(args(list), |_| None).err().map(|e| e.0);
        assert_eq!(
            err(&["--bogus"]),
            Some("unknown option '--bogus'".to_owned())
        );
        assert_eq!(err(&["--grace"]), Some("--grace needs a value".to_owned()));
        assert!(err(&["--forward-to", "both"]).is_some_and(|e| e.contains("group or pid")));
        assert!(err(&["-l", "loud"]).is_some_and(|e| e.contains("not a log level")));
        let bad_env = parse(args(&[]), |n| {
            (n == "PIDVISOR_LOG_FORMAT").then(|| "xml".to_owned())
        });
        assert!(bad_env.is_err_and(|e| e.0.starts_with("PIDVISOR_LOG_FORMAT:")));
    }
}
