//! s6 service directories to pidvisor service names. Scripts name a service by a folder:
//! `/var/run/s6/services/nginx` (s6-overlay v2), `/run/service/nginx` (v3), the service's
//! own folder (`/etc/services.d/nginx`, or `.` from its `finish`), and `.../nginx/log`
//! for its logger. The folder's last component is the name (`log` adds its parent's:
//! `nginx/log`), taken from the path as written and, if it exists, as resolved (through
//! the `/var/run/s6/services` links and `.`), and checked against pidvisor's services.

use std::path::{Component, Path, PathBuf};

/// Why a service directory names no service.
#[derive(Debug, PartialEq, Eq)]
pub enum Unresolved {
    /// The path does not exist and names no service (s6 fails with 111).
    Missing(String),
    /// The path exists but is no service of pidvisor's (s6-svc fails with 102).
    NotSupervised(String),
}

/// The service that `dir` names, among `known`.
pub fn service_name(dir: &str, known: &[&str]) -> Result<String, Unresolved> {
    let written = PathBuf::from(dir);
    let resolved = std::fs::canonicalize(&written).ok();
    let candidates = [Some(written.clone()), resolved.clone()];
    for path in candidates.iter().flatten() {
        if let Some(name) = name_of(path)
            && known.contains(&name.as_str())
        {
            return Ok(name);
        }
    }
    let list = if known.is_empty() {
        "pidvisor supervises no service".to_owned()
    } else {
        format!("pidvisor's services are: {}", known.join(", "))
    };
    match resolved {
        None => Err(Unresolved::Missing(format!(
            "unable to control {dir}: No such file or directory; {list}"
        ))),
        Some(_) => Err(Unresolved::NotSupervised(format!(
            "{dir} is not a supervised service directory; {list}"
        ))),
    }
}

/// `.../NAME` -> `NAME`, `.../NAME/log` -> `NAME/log` (`.` and `..` left as they are: a
/// path with them only names a service once resolved).
fn name_of(path: &Path) -> Option<String> {
    let mut names = path.components().rev().filter_map(|c| match c {
        Component::Normal(name) => name.to_str(),
        _ => None,
    });
    if path
        .components()
        .any(|c| matches!(c, Component::CurDir | Component::ParentDir))
    {
        return None;
    }
    let last = names.next()?;
    if last == "log" {
        return names.next().map(|parent| format!("{parent}/log"));
    }
    Some(last.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: [&str; 3] = ["nginx", "nginx/log", "php-fpm"];

    #[test]
    fn every_path_scripts_use_names_the_service() {
        for dir in [
            "/var/run/s6/services/nginx",
            "/run/service/nginx/",
            "/etc/services.d/nginx",
            "nginx",
        ] {
            assert_eq!(service_name(dir, &KNOWN), Ok("nginx".to_owned()), "{dir}");
        }
        assert_eq!(
            service_name("/var/run/s6/services/nginx/log", &KNOWN),
            Ok("nginx/log".to_owned())
        );
    }

    #[test]
    fn unknown_folders_say_whether_they_exist() {
        assert!(matches!(
            service_name("/nonexistent/redis", &KNOWN),
            Err(Unresolved::Missing(m)) if m.contains("No such file") && m.contains("php-fpm")
        ));
        assert!(matches!(
            service_name("/", &KNOWN),
            Err(Unresolved::NotSupervised(_))
        ));
    }

    #[test]
    fn a_relative_folder_is_resolved_first() {
        let cwd = std::env::current_dir().unwrap();
        let name = cwd.file_name().unwrap().to_str().unwrap().to_owned();
        assert_eq!(service_name(".", &[name.as_str()]), Ok(name.clone()));
        assert_eq!(name_of(Path::new("./x/..")), None);
    }
}
