//! Users and groups, read straight from `/etc/passwd` and `/etc/group`.
//!
//! pidvisor is a static binary, so there is no NSS: the two files of the image are the
//! whole truth. A missing file counts as empty (a `FROM scratch` image has neither), which
//! still lets numeric ids work.

use std::cell::OnceCell;
use std::path::{Path, PathBuf};

use crate::init::spawn::Credentials;
use crate::services::config_file::read_config_file;

/// One line of `/etc/passwd`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: PathBuf,
}

/// One line of `/etc/group`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// Why a user or group could not be resolved, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupError {
    /// The service.toml key at fault: `"user"` or `"group"`.
    pub field: &'static str,
    pub message: String,
    pub fix: String,
}

/// The users and groups of the image.
#[derive(Debug, Default)]
pub struct UserDb {
    entries: OnceCell<Entries>,
    /// The passwd and group files read at the first lookup; `None`: what `entries`
    /// holds is all there is.
    files: Option<(PathBuf, PathBuf)>,
}

#[derive(Debug, Default)]
struct Entries {
    users: Vec<PasswdEntry>,
    groups: Vec<GroupEntry>,
}

/// The largest /etc/passwd or /etc/group read (a FIFO or a device there is not read).
const MAX_USER_DB: u64 = 64 * 1024 * 1024;

impl UserDb {
    /// The image's own `/etc/passwd` and `/etc/group`, read at the first lookup: only a
    /// service that sets `user` needs them (a few dozen system calls).
    pub fn system() -> UserDb {
        UserDb::read_when_needed("/etc/passwd".into(), "/etc/group".into())
    }

    /// These passwd and group files, read at the first lookup.
    pub fn read_when_needed(passwd_path: PathBuf, group_path: PathBuf) -> UserDb {
        UserDb {
            entries: OnceCell::new(),
            files: Some((passwd_path, group_path)),
        }
    }

    /// Reads the two files now (the tests', whose folder is gone by the first lookup).
    #[cfg(test)]
    pub fn load(passwd_path: &Path, group_path: &Path) -> UserDb {
        UserDb {
            entries: OnceCell::from(Entries::read(passwd_path, group_path)),
            files: None,
        }
    }

    fn entries(&self) -> &Entries {
        self.entries.get_or_init(|| match &self.files {
            Some((passwd_path, group_path)) => Entries::read(passwd_path, group_path),
            None => Entries::default(),
        })
    }

    /// Resolves `user` (a name or a numeric id) and an optional `group` (name or id;
    /// default: the user's primary group). Supplementary groups are the chosen gid plus
    /// every group that lists the user's name as a member.
    pub fn resolve(&self, user: &str, group: Option<&str>) -> Result<Credentials, LookupError> {
        let (uid, entry) = match user.parse::<u32>() {
            Ok(uid) => (uid, self.entries().users.iter().find(|e| e.uid == uid)),
            Err(_) => {
                let entry = self.entries().users.iter().find(|e| e.name == user);
                let entry = entry.ok_or_else(|| LookupError {
                    field: "user",
                    message: format!("\"{user}\" is not in /etc/passwd"),
                    fix: "add it to /etc/passwd in the image (e.g. `useradd`), or use a numeric id"
                        .to_owned(),
                })?;
                (entry.uid, Some(entry))
            }
        };
        let gid = match group {
            Some(group) => self.group_id(group)?,
            None => entry.map_or(uid, |e| e.gid),
        };
        let mut groups = vec![gid];
        if let Some(entry) = entry {
            let member_of = self
                .entries()
                .groups
                .iter()
                .filter(|g| g.members.contains(&entry.name));
            for g in member_of {
                if !groups.contains(&g.gid) {
                    groups.push(g.gid);
                }
            }
        }
        Ok(Credentials {
            user: user.to_owned(),
            uid,
            gid,
            groups,
            home: entry.map(|e| e.home.clone()),
            no_new_privileges: true,
        })
    }

    fn group_id(&self, group: &str) -> Result<u32, LookupError> {
        if let Ok(gid) = group.parse() {
            return Ok(gid);
        }
        self.entries()
            .groups
            .iter()
            .find(|g| g.name == group)
            .map(|g| g.gid)
            .ok_or_else(|| LookupError {
                field: "group",
                message: format!("\"{group}\" is not in /etc/group"),
                fix: "add it to /etc/group in the image (e.g. `groupadd`), or use a numeric id"
                    .to_owned(),
            })
    }
}

impl Entries {
    /// Reads the two files; one that cannot be read counts as empty (malformed lines are
    /// skipped, as libc does).
    fn read(passwd_path: &Path, group_path: &Path) -> Entries {
        let read = |path: &Path| match read_config_file(path, MAX_USER_DB) {
            Ok(text) => text,
            Err(err) => {
                tracing::debug!("cannot read {}: {err}", path.display());
                String::new()
            }
        };
        Entries {
            users: records(&read(passwd_path))
                .filter_map(passwd_entry)
                .collect(),
            groups: records(&read(group_path)).filter_map(group_entry).collect(),
        }
    }
}

/// The colon-separated fields of each non-empty, non-comment line.
fn records(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| line.split(':').collect())
}

/// `name:password:uid:gid:gecos:home:shell`
fn passwd_entry(fields: Vec<&str>) -> Option<PasswdEntry> {
    let [name, _, uid, gid, _, home, ..] = fields[..] else {
        return None;
    };
    Some(PasswdEntry {
        name: name.to_owned(),
        uid: uid.parse().ok()?,
        gid: gid.parse().ok()?,
        home: PathBuf::from(home),
    })
}

/// `name:password:gid:member,member,...`
fn group_entry(fields: Vec<&str>) -> Option<GroupEntry> {
    let [name, _, gid, members] = fields[..] else {
        return None;
    };
    Some(GroupEntry {
        name: name.to_owned(),
        gid: gid.parse().ok()?,
        members: members
            .split(',')
            .filter(|m| !m.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::test_dir::TempDir;

    const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/bash
# a comment
www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin
app:x:1000:1000:App,,,:/home/app:/bin/sh
broken line
";
    const GROUP: &str = "\
root:x:0:
www-data:x:33:app
app:x:1000:
docker:x:999:app,other
nogroup:x:65534:
";

    fn db() -> UserDb {
        let dir = TempDir::new("users");
        let passwd = dir.write("passwd", PASSWD);
        let group = dir.write("group", GROUP);
        UserDb::load(&passwd, &group)
    }

    #[test]
    fn resolves_a_name_with_its_groups_and_home() {
        let creds = db().resolve("app", None).unwrap();
        assert_eq!(
            creds,
            Credentials {
                user: "app".to_owned(),
                uid: 1000,
                gid: 1000,
                groups: vec![1000, 33, 999],
                home: Some(PathBuf::from("/home/app")),
                no_new_privileges: true,
            }
        );
    }

    #[test]
    fn group_overrides_the_primary_group() {
        let creds = db().resolve("www-data", Some("nogroup")).unwrap();
        assert_eq!(
            (creds.uid, creds.gid, creds.groups),
            (33, 65534, vec![65534])
        );
        assert_eq!(db().resolve("app", Some("5")).unwrap().gid, 5);
    }

    #[test]
    fn numeric_ids_work_with_or_without_an_entry() {
        let known = db().resolve("1000", None).unwrap();
        assert_eq!(known.home, Some(PathBuf::from("/home/app")));
        assert_eq!(known.groups, vec![1000, 33, 999]);
        let unknown = db().resolve("4242", None).unwrap();
        assert_eq!(
            (unknown.uid, unknown.gid, unknown.groups, unknown.home),
            (4242, 4242, vec![4242], None)
        );
        assert_eq!(db().resolve("4242", Some("33")).unwrap().gid, 33);
    }

    #[test]
    fn unknown_names_say_how_to_fix_them() {
        let err = db().resolve("nobody", None).unwrap_err();
        assert!(err.message.contains("\"nobody\" is not in /etc/passwd"));
        assert!(err.fix.contains("useradd"));
        let err = db().resolve("app", Some("staff")).unwrap_err();
        assert!(err.fix.contains("groupadd"));
    }

    #[test]
    fn missing_files_leave_only_numeric_ids() {
        let db = UserDb::load(
            Path::new("/nonexistent/passwd"),
            Path::new("/nonexistent/g"),
        );
        assert!(db.resolve("root", None).is_err());
        assert_eq!(db.resolve("0", None).unwrap().uid, 0);
    }
}
