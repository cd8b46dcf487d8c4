//! `s6-svscanctl -t SCANDIR`: what s6-overlay v2 scripts call to stop the container
//! (typically from a `finish`: "when this service dies, the container stops"). `-t`, and
//! `-q`, `-i`, `-b` (which also end s6-svscan), start pidvisor's shutdown; the exit code
//! is the one a script wrote to `/var/run/s6/env-stage3/S6_STAGE2_EXITED`, as under
//! s6-overlay, if any. `-a`, `-h`, `-n`, `-N`, `-z` (rescan, reap) have nothing to do:
//! pidvisor reads its services once and reaps by itself. Exit codes: 100 usage, 111
//! pidvisor not reachable.

use std::ffi::OsString;
use std::fs;

use super::talk::Link;
use super::{SYSTEM, USAGE, fatal, getopt, s6_dir};
use crate::control::protocol::Request;

const PROG: &str = "s6-svscanctl";

pub fn main(args: Vec<OsString>, env: impl Fn(&str) -> Option<String>) -> u8 {
    let parsed = match getopt::parse(args, "zabhitqnN", "") {
        Ok(parsed) if parsed.operands.len() == 1 => parsed,
        Ok(_) => return fatal(PROG, USAGE, "usage: s6-svscanctl [ -zabhitqnN ] scandir"),
        Err(message) => {
            return fatal(
                PROG,
                USAGE,
                &format!("{message}; usage: s6-svscanctl [ -zabhitqnN ] scandir"),
            );
        }
    };
    let stops = parsed
        .options
        .iter()
        .any(|(letter, _)| matches!(letter, 't' | 'q' | 'i' | 'b'));
    if !stops {
        return 0;
    }
    let exit_code = fs::read_to_string(s6_dir(&env).join("env-stage3/S6_STAGE2_EXITED"))
        .ok()
        .and_then(|text| text.trim().parse::<u8>().ok());
    match Link::connect(&env).and_then(|mut link| link.ask(&Request::Shutdown { exit_code })) {
        Ok(_) => 0,
        Err(err) => fatal(PROG, SYSTEM, err.message()),
    }
}
