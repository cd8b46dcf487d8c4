//! The s6 runtime folder that s6-overlay v2 scripts read, written by pidvisor at start
//! (unless `PIDVISOR_S6_COMPAT=0`): `/var/run/s6/container_environment/` (one file per
//! variable of the environment pidvisor was started with, the value as the file's whole
//! content; the folder 0755, the files 0644, as s6-dumpenv leaves them), and
//! `/var/run/s6/services/NAME`, a symlink to each service's folder, and an empty
//! `/var/run/s6/env-stage3/` (where a script may write `S6_STAGE2_EXITED`). `PIDVISOR_S6_DIR`
//! moves the folder. What cannot be written is a warning: the services run anyway.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

/// Writes the runtime folder `root`: the environment `vars`, and a link per service
/// (name, folder). Returns the problems, each a sentence for a warning.
pub fn write(
    root: &Path,
    vars: impl Iterator<Item = (OsString, OsString)>,
    services: &[(&str, &Path)],
) -> Vec<String> {
    // One sentence when the folder itself cannot be made (a non-root pidvisor, a
    // read-only root), rather than one per file.
    if let Err(err) = DirBuilder::new().recursive(true).mode(0o755).create(root) {
        return vec![format!(
            "cannot create {} ({err}): with-contenv and the s6 scripts that read it will not \
             work (PIDVISOR_S6_COMPAT=0 turns this off)",
            root.display()
        )];
    }
    let mut problems = Vec::new();
    if let Err(err) = write_environment(&root.join("container_environment"), vars) {
        problems.push(format!(
            "cannot write {}/container_environment ({err}): with-contenv will not work",
            root.display()
        ));
    }
    // Where s6-overlay's scripts leave the container's exit code for s6-svscanctl -t.
    if let Err(err) = DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(root.join("env-stage3"))
    {
        problems.push(format!(
            "cannot create {}/env-stage3 ({err}): an exit code written there is lost",
            root.display()
        ));
    }
    if let Err(err) = link_services(&root.join("services"), services) {
        problems.push(format!(
            "cannot write {}/services ({err}): s6-svc and friends still find services by \
             name, but not scripts that read files there",
            root.display()
        ));
    }
    problems
}

/// Whether `with-contenv` is installed (`--install-links` made it) in a folder of `path`
/// (the PATH variable) or in `/command` (s6-overlay v3's place for it). With no service
/// and no init script, it is the only reader the runtime folder could have, and writing
/// the folder (a file per variable of the environment) is most of what pidvisor does
/// before it can start the main command.
pub fn with_contenv_installed(path: Option<&std::ffi::OsStr>) -> bool {
    let folders = path.map(std::env::split_paths).into_iter().flatten();
    folders
        .chain([PathBuf::from("/command")])
        .any(|folder| folder.join("with-contenv").exists())
}

/// The envdir holding exactly `vars`: what an earlier run left (a restarted container
/// keeps its /var/run) is replaced, except a file that already holds its variable's
/// value with mode 0644, which is kept (reading it costs less than writing it anew).
fn write_environment(
    dir: &Path,
    vars: impl Iterator<Item = (OsString, OsString)>,
) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o755).create(dir)?;
    let mut written = HashSet::new();
    let mut content = Vec::new();
    for (name, value) in vars {
        let bytes = name.as_encoded_bytes();
        // Not a file name: no way to write it (s6-dumpenv cannot either).
        if bytes.is_empty() || bytes.contains(&b'/') || bytes.starts_with(b".") {
            continue;
        }
        let path = dir.join(&name);
        if !holds(&path, value.as_encoded_bytes(), &mut content) {
            remove_entry(&path)?;
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .open(&path)?;
            file.write_all(value.as_encoded_bytes())?;
        }
        written.insert(name);
    }
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if !written.contains(&entry.file_name()) {
            remove_entry(&entry.path())?;
        }
    }
    Ok(())
}

/// Whether `path` is a file of mode 0644 holding exactly `value`, read in one `read` into
/// `content` (kept by the caller for the next file, as this runs for every variable at
/// every start): a file of that length gives it all at once, and one read short only
/// makes the file be written anew.
fn holds(path: &Path, value: &[u8], content: &mut Vec<u8>) -> bool {
    let Ok(mut file) = File::open(path) else {
        return false;
    };
    let fits = file.metadata().is_ok_and(|meta| {
        meta.is_file()
            && meta.permissions().mode() & 0o7777 == 0o644
            && meta.len() == value.len() as u64
    });
    if !fits {
        return false;
    }
    // One byte more than the value: a file that grew meanwhile shows it.
    content.clear();
    content.resize(value.len() + 1, 0);
    matches!(file.read(content), Ok(n) if content[..n] == *value)
}

/// Removes a file or a folder (with what it holds) at `path`, if there is one.
fn remove_entry(path: &Path) -> io::Result<()> {
    let removed = match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(err) => Err(err),
    };
    match removed {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
        _ => Ok(()),
    }
}

/// `services/NAME` -> the service's folder (absolute, as the services' folders are), for
/// every service; other entries stay, and so does a link that already points there (a
/// restarted container keeps its /var/run).
fn link_services(dir: &Path, services: &[(&str, &Path)]) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o755).create(dir)?;
    for (name, folder) in services {
        let link = dir.join(name);
        match fs::read_link(&link) {
            Ok(target) if target == *folder => continue,
            Ok(_) => fs::remove_file(&link)?,
            // Not a link: a folder the image put there itself, which stays.
            Err(err) if err.raw_os_error() == Some(libc::EINVAL) => continue,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
        symlink(folder, &link)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s6::contenv::read_env_dir;
    use crate::services::test_dir::TempDir;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn with_contenv_is_found_in_a_folder_of_path_only_once_installed() {
        let dir = TempDir::new("with-contenv");
        let bin = dir.path().join("bin");
        fs::create_dir(&bin).unwrap();
        let path = std::env::join_paths(["/nonexistent", bin.to_str().unwrap()]).unwrap();
        assert!(!with_contenv_installed(Some(&path)));
        symlink("/nonexistent/init", bin.join("with-contenv")).unwrap();
        // A dangling link is not an installed program: `exists` follows it.
        assert!(!with_contenv_installed(Some(&path)));
        fs::write(bin.join("target"), b"").unwrap();
        fs::remove_file(bin.join("with-contenv")).unwrap();
        symlink(bin.join("target"), bin.join("with-contenv")).unwrap();
        assert!(with_contenv_installed(Some(&path)));
    }

    #[test]
    fn the_environment_round_trips_through_the_envdir() {
        let dir = TempDir::new("runtime");
        let vars = [
            ("PATH", "/usr/bin:/bin"),
            ("MULTI", "line one\nline two\n"),
            ("EMPTY", ""),
            ("A/B", "not a file name"),
        ]
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let service = dir.service("web", None);
        let problems = write(dir.path(), vars.clone().into_iter(), &[("web", &service)]);
        assert!(problems.is_empty(), "{problems:?}");
        let envdir = dir.path().join("container_environment");
        let read = read_env_dir(&envdir).unwrap();
        let mut expected: Vec<_> = vars[..3].to_vec();
        expected.sort();
        assert_eq!(read, expected);
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&envdir), 0o755);
        assert_eq!(mode(&envdir.join("PATH")), 0o644);
        assert_eq!(
            fs::canonicalize(dir.path().join("services/web")).unwrap(),
            fs::canonicalize(&service).unwrap()
        );
        // A second start leaves exactly its own environment: what a script added is
        // gone, a changed value or mode is written anew, an unchanged file stays.
        let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&fs::metadata(p).unwrap());
        let kept = inode(&envdir.join("PATH"));
        fs::write(envdir.join("GREETING"), "from cont-init").unwrap();
        fs::set_permissions(envdir.join("EMPTY"), fs::Permissions::from_mode(0o600)).unwrap();
        let mut second = vars[..3].to_vec();
        second[1].1 = OsString::from("changed");
        let problems = write(dir.path(), second.iter().cloned(), &[("web", &service)]);
        assert!(problems.is_empty(), "{problems:?}");
        let mut expected = second.clone();
        expected.sort();
        assert_eq!(read_env_dir(&envdir).unwrap(), expected);
        assert_eq!(
            inode(&envdir.join("PATH")),
            kept,
            "an unchanged file is kept"
        );
        assert_eq!(mode(&envdir.join("EMPTY")), 0o644);
    }

    #[test]
    fn a_right_link_stays_a_wrong_one_is_replaced_and_a_folder_is_kept() {
        let dir = TempDir::new("links");
        let services = dir.path().join("services");
        let (web, db) = (dir.service("web", None), dir.service("db", None));
        fs::create_dir_all(services.join("own")).unwrap();
        symlink(&web, services.join("web")).unwrap();
        symlink(&web, services.join("db")).unwrap();
        let inode =
            |p: &Path| std::os::unix::fs::MetadataExt::ino(&fs::symlink_metadata(p).unwrap());
        let web_link = inode(&services.join("web"));
        let own = dir.service("own", None);
        link_services(&services, &[("web", &web), ("db", &db), ("own", &own)]).unwrap();
        assert_eq!(
            inode(&services.join("web")),
            web_link,
            "the right link was kept"
        );
        assert_eq!(fs::read_link(services.join("db")).unwrap(), db);
        assert!(fs::symlink_metadata(services.join("own")).unwrap().is_dir());
    }
}
