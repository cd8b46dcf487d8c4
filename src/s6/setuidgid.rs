//! `s6-setuidgid ACCOUNT PROG...`: runs PROG as another user, as s6's does: ACCOUNT is a
//! user name (its uid, its primary gid and the supplementary groups `/etc/group` gives
//! it) or `uid:gid` (that gid alone); an empty ACCOUNT changes nothing. Environment
//! variables are left as they are (s6 sets none).
//!
//! Exit codes are s6's: 1 unknown account, 100 usage, 111 a system call failed (not
//! root), 126/127 PROG cannot be run.

use std::ffi::OsString;

use nix::unistd::{Gid, Uid, setgid, setgroups, setuid};

use super::{SYSTEM, USAGE, exec_into, fatal};
use crate::services::users::UserDb;

const PROG: &str = "s6-setuidgid";
const UNKNOWN_ACCOUNT: u8 = 1;

pub fn main(args: Vec<OsString>) -> u8 {
    let mut args = args.into_iter();
    let (Some(account), prog) = (args.next(), args.collect::<Vec<_>>()) else {
        return fatal(PROG, USAGE, "usage: s6-setuidgid account prog...");
    };
    if prog.is_empty() {
        return fatal(PROG, USAGE, "usage: s6-setuidgid account prog...");
    }
    let Some(account) = account.to_str() else {
        return fatal(PROG, UNKNOWN_ACCOUNT, "unknown user: the name is not UTF-8");
    };
    if account.is_empty() {
        return exec_into(PROG, &prog, &[]);
    }
    let ids = match resolve(account, &UserDb::system()) {
        Ok(ids) => ids,
        Err(message) => return fatal(PROG, UNKNOWN_ACCOUNT, &message),
    };
    if let Err(message) = become_user(&ids) {
        return fatal(PROG, SYSTEM, &message);
    }
    exec_into(PROG, &prog, &[])
}

/// uid, gid and supplementary groups.
#[derive(Debug, PartialEq, Eq)]
pub struct Ids {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

/// `name` from the account database, or `uid:gid` as it is.
pub fn resolve(account: &str, db: &UserDb) -> Result<Ids, String> {
    if let Some((uid, gid)) = account.split_once(':') {
        let number = |text: &str| {
            text.parse::<u32>()
                .map_err(|_| format!("invalid uid:gid: {account}"))
        };
        let (uid, gid) = (number(uid)?, number(gid)?);
        return Ok(Ids {
            uid,
            gid,
            groups: vec![gid],
        });
    }
    if account.parse::<u32>().is_ok() {
        return Err(format!(
            "unknown user: {account} (a number is not a user name: use uid:gid)"
        ));
    }
    let credentials = db
        .resolve(account, None)
        .map_err(|err| format!("unknown user: {account} ({}; {})", err.message, err.fix))?;
    Ok(Ids {
        uid: credentials.uid,
        gid: credentials.gid,
        groups: credentials.groups,
    })
}

/// Groups first, then the gid, then the uid (after which nothing else may be changed).
fn become_user(ids: &Ids) -> Result<(), String> {
    let groups: Vec<Gid> = ids.groups.iter().map(|&g| Gid::from_raw(g)).collect();
    setgroups(&groups)
        .map_err(|e| format!("unable to setgroups: {e} (s6-setuidgid needs root)"))?;
    setgid(Gid::from_raw(ids.gid)).map_err(|e| format!("unable to setgid: {e}"))?;
    setuid(Uid::from_raw(ids.uid)).map_err(|e| format!("unable to setuid: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::test_dir::TempDir;

    fn db() -> UserDb {
        let dir = TempDir::new("setuidgid");
        let passwd = dir.write(
            "passwd",
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        );
        let group = dir.write("group", "root:x:0:\napp:x:1000:\nwww:x:33:app\n");
        UserDb::load(&passwd, &group)
    }

    #[test]
    fn names_bring_their_groups_and_pairs_stand_alone() {
        assert_eq!(
            resolve("app", &db()),
            Ok(Ids {
                uid: 1000,
                gid: 1000,
                groups: vec![1000, 33]
            })
        );
        assert_eq!(
            resolve("42:43", &db()),
            Ok(Ids {
                uid: 42,
                gid: 43,
                groups: vec![43]
            })
        );
    }

    #[test]
    fn unknown_accounts_are_named() {
        assert!(
            resolve("nobody", &db())
                .unwrap_err()
                .starts_with("unknown user: nobody")
        );
        assert!(resolve("1:x", &db()).unwrap_err().contains("uid:gid"));
        assert!(resolve("1000", &db()).unwrap_err().contains("use uid:gid"));
    }
}
