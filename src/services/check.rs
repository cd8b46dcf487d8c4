//! `pidvisor --check [DIR]`: load the services folder the way a boot would, print what is
//! wrong (or that all is well), and exit 0 or 1. Meant for a `RUN` step in a Dockerfile
//! and for CI, so that a typo fails the build instead of the container.

use std::collections::BTreeSet;
use std::path::Path;

use crate::init::shebang;
use crate::output::console;
use crate::services::config::ConfigError;
use crate::services::scan::{self, ScanResult};

/// Checks `dir`, prints the verdict to stdout, and returns the exit code (1 also when
/// stdout does not take the verdict).
pub fn run_check(dir: &Path) -> i32 {
    let (report, code) = match dir.exists() {
        true => {
            let mut result = scan::scan(dir);
            result.problems.extend(missing_interpreters(&result));
            report(&result)
        }
        false => (missing(dir), 1),
    };
    match console::print_stdout(&report) {
        true => code,
        false => 1,
    }
}

/// Scripts whose `#!` interpreter is not there. Checked here rather than at boot, where
/// a `cont-init.d` script may still install it: a boot reports it when `run` fails.
fn missing_interpreters(result: &ScanResult) -> Vec<ConfigError> {
    let scripts = result.services.iter().flat_map(|spec| {
        let files = [Some(&spec.run), spec.finish.as_ref(), spec.logger.as_ref()];
        files.into_iter().flatten().map(move |file| (spec, file))
    });
    scripts
        .filter_map(|(spec, file)| {
            let missing = shebang::missing_interpreter(file)?;
            Some(ConfigError {
                service: Some(spec.name.clone()),
                file: file.clone(),
                field: None,
                line_col: Some((1, 1)),
                message: format!("its interpreter {} does not exist", missing.display()),
                fix: "install it in the image, or correct the #! line".to_owned(),
            })
        })
        .collect()
}

fn missing(dir: &Path) -> String {
    format!(
        "{}: does not exist\n  create it with one folder per service (<name>/run), \
         or name the right folder: pidvisor --check DIR\n",
        dir.display()
    )
}

/// The text to print and the exit code.
fn report(result: &ScanResult) -> (String, i32) {
    if result.problems.is_empty() {
        let names: Vec<&str> = result.services.iter().map(|s| s.name.as_str()).collect();
        let list = match names.is_empty() {
            true => String::new(),
            false => format!(" ({})", names.join(", ")),
        };
        let order: Vec<String> = scan::start_order(&result.services)
            .iter()
            .map(|layer| {
                let names: Vec<&str> = layer
                    .iter()
                    .map(|&i| result.services[i].name.as_str())
                    .collect();
                names.join(" ")
            })
            .collect();
        let order = match order.len() {
            0 | 1 => String::new(),
            _ => format!("start order: {}\n", order.join(" -> ")),
        };
        return (
            format!("ok: {}{list}\n{order}", plural(names.len(), "service")),
            0,
        );
    }
    let mut text = String::new();
    for problem in &result.problems {
        text.push_str(&format!("{problem}\n"));
    }
    let services: BTreeSet<&str> = result
        .problems
        .iter()
        .filter_map(|p| p.service.as_deref())
        .collect();
    text.push_str(&format!(
        "{} in {}\n",
        plural(result.problems.len(), "problem"),
        plural(services.len(), "service")
    ));
    (text, 1)
}

fn plural(n: usize, noun: &str) -> String {
    match n {
        1 => format!("1 {noun}"),
        _ => format!("{n} {noun}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::test_dir::TempDir;

    #[test]
    fn all_good_lists_the_services() {
        let dir = TempDir::new("check-ok");
        dir.service("web", None);
        dir.service("db", None);
        assert_eq!(
            report(&scan::scan(dir.path())),
            ("ok: 2 services (db, web)\n".to_owned(), 0)
        );
        assert_eq!(run_check(dir.path()), 0);
        let empty = TempDir::new("check-empty");
        assert_eq!(report(&scan::scan(empty.path())).0, "ok: 0 services\n");
    }

    #[test]
    fn problems_come_one_per_line_with_their_fix_and_a_summary() {
        let dir = TempDir::new("check-bad");
        dir.service(
            "web",
            Some("restart-delay = \"fast\"\nstop-signal = \"NOPE\"\n"),
        );
        dir.service("db", None);
        dir.write("broken/down", "");
        let (text, code) = report(&scan::scan(dir.path()));
        assert_eq!(code, 1);
        let web = dir.path().join("web/service.toml");
        let expected_web = format!(
            "{}:1:17: restart-delay: 'fast' is not a duration\n  write e.g. 500ms, 5s, 2m\n",
            web.display()
        );
        assert!(text.contains(&expected_web), "{text}");
        assert!(
            text.contains("stop-signal: \"NOPE\" is not a signal\n  use a name"),
            "{text}"
        );
        assert!(
            text.contains("broken/run: does not exist\n  create it"),
            "{text}"
        );
        assert!(text.ends_with("3 problems in 2 services\n"), "{text}");
        assert_eq!(run_check(dir.path()), 1);
    }

    #[test]
    fn a_missing_folder_is_reported() {
        let text = missing(Path::new("/nonexistent/services.d"));
        assert!(text.starts_with("/nonexistent/services.d: does not exist\n  create it"));
        assert_eq!(run_check(Path::new("/nonexistent/services.d")), 1);
    }
}
