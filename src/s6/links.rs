//! `pidvisor --install-links DIR`: the names the binary answers to, as symlinks in DIR
//! (`pidvisorctl`, `with-contenv`, `s6-svc`, `s6-svstat`, `s6-svwait`, `s6-svscanctl`,
//! `s6-setuidgid`, `s6-envuidgid`), pointing at the binary itself, so that an image needs one file and
//! one `RUN /init --install-links /usr/bin`. A name that is already there is replaced
//! (said on stdout); each link is made beside and renamed into place.

use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::ExitCode;

use super::NAMES;
use crate::output::console;

/// Creates the links in `dir` to `target`; returns what was done, one line per link.
pub fn install(dir: &Path, target: &Path) -> io::Result<Vec<String>> {
    let mut done = Vec::new();
    for (name, _) in NAMES {
        let link = dir.join(name);
        let existed = fs::symlink_metadata(&link).is_ok();
        if fs::read_link(&link).is_ok_and(|to| to == target) {
            done.push(format!(
                "{} -> {} (already there)",
                link.display(),
                target.display()
            ));
            continue;
        }
        let staging = dir.join(format!(".{name}.pidvisor-link"));
        let _ = fs::remove_file(&staging);
        symlink(target, &staging).map_err(|e| named(&staging, e))?;
        fs::rename(&staging, &link).map_err(|e| {
            let _ = fs::remove_file(&staging);
            named(&link, e)
        })?;
        let replaced = if existed {
            " (replaced what was there)"
        } else {
            ""
        };
        done.push(format!(
            "{} -> {}{replaced}",
            link.display(),
            target.display()
        ));
    }
    Ok(done)
}

/// `pidvisor --install-links DIR`: the links to this binary, one line each on stdout;
/// exit 0, or 1 with the reason.
pub fn main(dir: &Path) -> ExitCode {
    let made = std::env::current_exe().and_then(|target| install(dir, &target));
    match made {
        Ok(lines) => match console::print_stdout(&(lines.join("\n") + "\n")) {
            true => ExitCode::SUCCESS,
            false => ExitCode::FAILURE,
        },
        Err(err) => {
            console::print_stderr(&format!(
                "pidvisor: --install-links: cannot create the links: {err}\n"
            ));
            ExitCode::FAILURE
        }
    }
}

fn named(path: &Path, err: io::Error) -> io::Error {
    io::Error::new(err.kind(), format!("{}: {err}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::test_dir::TempDir;

    #[test]
    fn every_name_links_to_the_binary_and_a_second_run_changes_nothing() {
        let dir = TempDir::new("links");
        let target = Path::new("/init");
        fs::write(dir.path().join("s6-svc"), "an old s6-svc").unwrap();
        let done = install(dir.path(), target).unwrap();
        assert_eq!(done.len(), NAMES.len());
        for (name, _) in NAMES {
            assert_eq!(fs::read_link(dir.path().join(name)).unwrap(), target);
        }
        assert!(
            done.iter()
                .any(|line| line.contains("s6-svc") && line.contains("replaced"))
        );
        let again = install(dir.path(), target).unwrap();
        assert!(again.iter().all(|line| line.ends_with("(already there)")));
    }

    #[test]
    fn a_folder_that_does_not_exist_is_named() {
        let err = install(Path::new("/nonexistent/bin"), Path::new("/init")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/bin/"), "{err}");
    }
}
