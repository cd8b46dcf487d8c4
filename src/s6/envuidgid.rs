//! `s6-envuidgid ACCOUNT PROG...`: runs PROG with `UID`, `GID` and `GIDLIST` (the
//! supplementary groups, comma-separated, without the primary one) set for ACCOUNT, as
//! s6's does without options; its options (`-u`, `-g`, `-B`, `-n`, `-i`, `-D`) are
//! refused. Exit codes: 1 unknown account, 100 usage, 126/127 PROG cannot be run.

use std::ffi::OsString;

use super::setuidgid::resolve;
use super::{USAGE, exec_into, fatal};
use crate::services::users::UserDb;

const PROG: &str = "s6-envuidgid";

pub fn main(args: Vec<OsString>) -> u8 {
    let mut args = args.into_iter();
    let (Some(account), prog) = (args.next(), args.collect::<Vec<_>>()) else {
        return fatal(PROG, USAGE, "usage: s6-envuidgid account prog...");
    };
    let Some(account) = account.to_str().filter(|a| !a.starts_with('-')) else {
        return fatal(
            PROG,
            USAGE,
            "options are not supported by pidvisor's s6-envuidgid; usage: s6-envuidgid account prog...",
        );
    };
    if prog.is_empty() || account.contains(':') {
        return fatal(PROG, USAGE, "usage: s6-envuidgid account prog...");
    }
    let ids = match resolve(account, &UserDb::system()) {
        Ok(ids) => ids,
        Err(message) => return fatal(PROG, 1, &message),
    };
    let list: Vec<String> = ids
        .groups
        .iter()
        .filter(|&&g| g != ids.gid)
        .map(u32::to_string)
        .collect();
    let env = [
        ("UID", ids.uid.to_string()),
        ("GID", ids.gid.to_string()),
        ("GIDLIST", list.join(",")),
    ]
    .map(|(k, v)| (OsString::from(k), OsString::from(v)));
    exec_into(PROG, &prog, &env)
}
