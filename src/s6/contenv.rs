//! `with-contenv PROG...`: runs PROG with the container's environment, as s6-overlay's
//! does: every variable of `/var/run/s6/container_environment` (one file per variable,
//! the whole file its value, as pidvisor writes them at start; see [`super::runtime`]),
//! so that a variable a `cont-init.d` script wrote there is seen. They are set on top of
//! the environment PROG would get anyway (pidvisor's services already have the
//! container's, plus `PIDVISOR_SERVICE` and their service.toml `env`, which stay).
//! With `S6_KEEP_ENV=1`, PROG runs with its environment as it is (s6-overlay's meaning).
//!
//! Exit codes: 100 usage, 111 no such folder (not under pidvisor, or its s6 compatibility
//! is off), 126/127 PROG cannot be run; otherwise PROG's own.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

use super::{SYSTEM, USAGE, exec_into, fatal, s6_dir};

const PROG: &str = "with-contenv";

pub fn with_contenv(args: Vec<OsString>, env: impl Fn(&str) -> Option<String>) -> u8 {
    if args.is_empty() {
        return fatal(PROG, USAGE, "usage: with-contenv prog...");
    }
    let keep = env("S6_KEEP_ENV").is_some_and(|v| !v.trim().is_empty() && v.trim() != "0");
    if keep {
        return exec_into(PROG, &args, &[]);
    }
    let dir = s6_dir(&env).join("container_environment");
    match read_env_dir(&dir) {
        Ok(vars) => exec_into(PROG, &args, &vars),
        Err(err) if err.kind() == io::ErrorKind::NotFound => fatal(
            PROG,
            SYSTEM,
            &format!(
                "unable to read {}: it does not exist. with-contenv needs pidvisor as the \
                 container's init (it writes that folder at start, unless \
                 PIDVISOR_S6_COMPAT=0); to run PROG with the environment as it is, set \
                 S6_KEEP_ENV=1",
                dir.display()
            ),
        ),
        Err(err) => fatal(
            PROG,
            SYSTEM,
            &format!("unable to read {}: {err}", dir.display()),
        ),
    }
}

/// Every variable of an envdir: the file's name, the file's whole content. Files whose
/// name starts with `.` and entries that are not files are skipped.
pub fn read_env_dir(dir: &Path) -> io::Result<Vec<(OsString, OsString)>> {
    let mut vars = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.as_encoded_bytes().starts_with(b".") || !entry.file_type()?.is_file() {
            continue;
        }
        let value = fs::read(entry.path())?;
        if value.contains(&0) {
            continue;
        }
        vars.push((name, OsString::from_vec(value)));
    }
    vars.sort();
    Ok(vars)
}
