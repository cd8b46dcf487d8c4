//! The one-shot script folders: `cont-init.d` (before any service starts) and
//! `cont-finish.d` (after every service has stopped), run one at a time in name order.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The executable regular files of `dir`, sorted by name; dot-files are skipped, and a
/// missing folder has no scripts. Files that are not executable are returned in `skipped`
/// so the caller can say so.
pub fn list(dir: &Path) -> io::Result<Scripts> {
    let mut scripts = Scripts::default();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(scripts),
        Err(err) => return Err(err),
    };
    for entry in entries {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let Ok(metadata) = fs::metadata(&path) else {
            continue;
        };
        if !metadata.is_file() {
            continue;
        }
        if metadata.permissions().mode() & 0o111 == 0 {
            scripts.skipped.push(path);
        } else {
            scripts.runnable.push(path);
        }
    }
    scripts.runnable.sort();
    scripts.skipped.sort();
    Ok(scripts)
}

#[derive(Debug, Default)]
pub struct Scripts {
    pub runnable: Vec<PathBuf>,
    pub skipped: Vec<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_executables_in_name_order_and_reports_the_rest() {
        let dir = std::env::temp_dir().join(format!("pidvisor-scripts-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("subdir")).expect("mkdir");
        for (name, mode) in [
            ("20-b", 0o755),
            ("10-a", 0o700),
            ("30-c", 0o644),
            (".hidden", 0o755),
        ] {
            let path = dir.join(name);
            fs::write(&path, "#!/bin/sh\n").expect("write");
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
        }
        let scripts = list(&dir).expect("list");
        let names = |paths: &[PathBuf]| -> Vec<String> {
            paths
                .iter()
                .map(|p| {
                    p.file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned()
                })
                .collect()
        };
        assert_eq!(names(&scripts.runnable), ["10-a", "20-b"]);
        assert_eq!(names(&scripts.skipped), ["30-c"]);
        assert!(
            list(&dir.join("missing"))
                .expect("missing")
                .runnable
                .is_empty()
        );
        let _ = fs::remove_dir_all(&dir);
    }
}
