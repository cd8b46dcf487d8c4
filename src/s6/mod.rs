//! s6 compatibility: the commands that s6-overlay v2 images call from their scripts
//! (`with-contenv`, `s6-svc`, `s6-svstat`, `s6-svwait`, `s6-svscanctl`, `s6-setuidgid`,
//! `s6-envuidgid`),
//! each the same binary under another name, like `pidvisorctl`; and, for the supervisor,
//! the runtime folder those scripts read (`/var/run/s6/container_environment`,
//! `/var/run/s6/services/NAME`), in [`runtime`].
//!
//! Each command behaves as its s6 namesake does for the uses scripts make of it, with s6's
//! exit codes (100 usage, 111 system call failed, 102 not a supervised service), and
//! refuses what pidvisor cannot do with a message that says so. The commands that drive
//! services talk to pidvisor over the control socket ([`talk`]); s6's service directories
//! are turned into pidvisor's service names by [`servicedir`].
//!
//! A layer beside `control`'s client: it may use [`crate::control`] (the protocol),
//! [`crate::services`] (users and groups), [`crate::init`], [`crate::output`] and
//! [`crate::duration`], and nothing above. The supervisor uses [`runtime`].

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod contenv;
mod envuidgid;
mod getopt;
pub mod links;
pub mod runtime;
mod servicedir;
mod setuidgid;
mod svc;
mod svscanctl;
mod svstat;
mod svwait;
mod talk;
mod watch;

/// Usage error (s6's convention).
pub const USAGE: u8 = 100;
/// A system call failed, or pidvisor could not be reached (s6's convention).
pub const SYSTEM: u8 = 111;
/// Not a currently supervised service directory (s6-svc's convention).
pub const NOT_SUPERVISED: u8 = 102;

/// Where s6-overlay v2 keeps its runtime files; `PIDVISOR_S6_DIR` moves it (tests, or a
/// read-only `/var/run`).
pub const DEFAULT_S6_DIR: &str = "/var/run/s6";

/// The s6 runtime folder: `PIDVISOR_S6_DIR`, or `/var/run/s6`.
fn s6_dir(env: impl Fn(&str) -> Option<String>) -> PathBuf {
    env("PIDVISOR_S6_DIR")
        .filter(|dir| !dir.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_S6_DIR), PathBuf::from)
}

/// The commands, by the name the binary is started under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    WithContenv,
    Svc,
    Svstat,
    Svwait,
    Svscanctl,
    Setuidgid,
    Envuidgid,
}

/// Every name the binary answers to besides `pidvisor` (what `--install-links` creates).
pub const NAMES: [(&str, Option<Tool>); 8] = [
    ("pidvisorctl", None),
    ("with-contenv", Some(Tool::WithContenv)),
    ("s6-svc", Some(Tool::Svc)),
    ("s6-svstat", Some(Tool::Svstat)),
    ("s6-svwait", Some(Tool::Svwait)),
    ("s6-svscanctl", Some(Tool::Svscanctl)),
    ("s6-setuidgid", Some(Tool::Setuidgid)),
    ("s6-envuidgid", Some(Tool::Envuidgid)),
];

/// The s6 command the binary was started as, if any.
pub fn invoked_as(argv0: Option<&OsStr>) -> Option<Tool> {
    let name = argv0.map(Path::new).and_then(Path::file_name)?;
    NAMES
        .iter()
        .find(|(known, _)| name == *known)
        .and_then(|(_, tool)| *tool)
}

/// The command's `main`: `args` without the program name.
pub fn main(tool: Tool, args: Vec<OsString>) -> ExitCode {
    let env = |name: &str| std::env::var(name).ok();
    let code = match tool {
        Tool::WithContenv => contenv::with_contenv(args, env),
        Tool::Svc => svc::main(args, env),
        Tool::Svstat => svstat::main(args, env),
        Tool::Svwait => svwait::main(args, env),
        Tool::Svscanctl => svscanctl::main(args, env),
        Tool::Setuidgid => setuidgid::main(args),
        Tool::Envuidgid => envuidgid::main(args),
    };
    ExitCode::from(code)
}

/// Prints `prog: fatal: message` on stderr and returns `code` (s6's way of failing).
fn fatal(prog: &str, code: u8, message: &str) -> u8 {
    crate::output::console::print_stderr(&format!("{prog}: fatal: {message}\n"));
    code
}

/// Prints `prog: warning: message` on stderr.
fn warn(prog: &str, message: &str) {
    crate::output::console::print_stderr(&format!("{prog}: warning: {message}\n"));
}

/// Replaces this process with `argv` (s6's "exec into"), with `env` set on top of the
/// environment; returns only on failure: 127 not found, 126 otherwise (as a shell).
fn exec_into(prog: &str, argv: &[OsString], env: &[(OsString, OsString)]) -> u8 {
    use std::os::unix::process::CommandExt;
    let Some((program, args)) = argv.split_first() else {
        return fatal(prog, USAGE, "no program to run");
    };
    let err = std::process::Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .exec();
    let code = match err.kind() {
        std::io::ErrorKind::NotFound => 127,
        _ => 126,
    };
    fatal(
        prog,
        code,
        &format!("unable to exec {}: {err}", program.to_string_lossy()),
    )
}
