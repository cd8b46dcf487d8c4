//! One service folder (`services.d/<name>/`, s6-overlay v2 layout) turned into a
//! [`ServiceSpec`], or into every problem found in it.
//!
//! The folder holds `run` (required, executable), optionally `finish`, `down`, `log/run`,
//! `notification-fd` and `service.toml`. Reading `service.toml` has two stages: serde reads
//! it into raw types that keep each value's position, stopping at the first syntax error,
//! unknown key or wrong type; validation then checks every value and collects all
//! problems, each with its line and column. Each value is checked on its own in `values`;
//! serde's errors are explained in `toml_errors`.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io;
use std::ops::Range;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::init::spawn::Credentials;
use crate::services::config_file::{fix_for, read_config_file};
use crate::services::spec::{Backoff, Readiness, RestartPolicy, ServiceSpec};
use crate::services::users::UserDb;

#[cfg(test)]
mod fuzz;
mod health;
mod toml_errors;
mod values;

use toml_errors::{explain_serde_error, line_at, line_col};
use values::{
    Invalid, RawReady, Scalar, duration, exit_code, factor, invalid, max_restarts, millis,
    notify_fd, readiness, restart_policy, secs, signal, umask, user_or_group,
};

/// The fix for a file that cannot be read.
const READABLE: &str = "make it readable by pidvisor (check its permissions)";

/// One problem, located as precisely as possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The service it belongs to; `None` for a problem with the services folder itself.
    pub service: Option<String>,
    pub file: PathBuf,
    /// The `service.toml` key, if the problem is about one.
    pub field: Option<String>,
    /// 1-based line and column (in characters) in `file`.
    pub line_col: Option<(usize, usize)>,
    pub message: String,
    /// What to do about it.
    pub fix: String,
}

/// `file:line:col: field: message`, then the fix indented on a second line.
impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, col)) = self.line_col {
            write!(f, ":{line}:{col}")?;
        }
        f.write_str(": ")?;
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        write!(f, "{}\n  {}", self.message, self.fix)
    }
}

/// The largest `service.toml` or `notification-fd` read.
const MAX_CONFIG_FILE: u64 = 1024 * 1024;

/// Whether the `service.toml` of the service folder `dir` sets `key` itself (so that a
/// default from elsewhere, like s6-overlay's `S6_SERVICES_GRACETIME`, leaves it alone).
/// A folder that has none, or one that cannot be read or parsed, sets nothing.
pub fn sets_key(dir: &Path, key: &str) -> bool {
    read_config_file(&dir.join("service.toml"), MAX_CONFIG_FILE)
        .ok()
        .and_then(|text| {
            toml::from_str::<std::collections::HashMap<String, serde::de::IgnoredAny>>(&text).ok()
        })
        .is_some_and(|keys| keys.contains_key(key))
}

/// Reads the service folder at `path` (as the user wrote it, for messages) and its
/// `service.toml`, resolving `user`/`group` in `users`.
pub fn load_service(
    path: &Path,
    name: &str,
    users: &UserDb,
) -> Result<ServiceSpec, Vec<ConfigError>> {
    let toml_file = path.join("service.toml");
    let mut check = Checker {
        service: name,
        toml_file: &toml_file,
        source: "",
        problems: Vec::new(),
    };
    let dir = std::path::absolute(path).unwrap_or_else(|err| {
        check.file_problem(
            path,
            format!("cannot make the path absolute: {err}"),
            READABLE,
        );
        path.to_owned()
    });
    let run = check.executable(path, &dir, "run", true);
    let finish = check.executable(path, &dir, "finish", false);
    let logger = match path.join("log").is_dir() {
        true => check.executable(path, &dir, "log/run", true),
        false => None,
    };
    let notification_fd = check.notification_fd(&path.join("notification-fd"));
    let source = match read_config_file(&toml_file, MAX_CONFIG_FILE) {
        Ok(text) => text,
        Err(err) if err.kind() == io::ErrorKind::NotFound => String::new(),
        Err(err) => {
            check.file_problem(&toml_file, format!("cannot read it: {err}"), fix_for(&err));
            String::new()
        }
    };
    check.source = &source;
    let raw = toml::from_str::<RawService>(&source).unwrap_or_else(|err| {
        check.serde_problem(&err);
        RawService::default()
    });
    let spec = check.spec(
        raw,
        Folder {
            name,
            dir,
            run: run.unwrap_or_default(),
            finish,
            logger,
            start_down: path.join("down").exists(),
            notification_fd,
        },
        users,
    );
    let mut problems = check.problems;
    // Folder problems first, then service.toml in file order.
    problems.sort_by_key(|problem| problem.line_col);
    match problems.is_empty() {
        true => Ok(spec),
        false => Err(problems),
    }
}

/// What the folder itself says, besides `service.toml`.
struct Folder<'a> {
    name: &'a str,
    dir: PathBuf,
    run: PathBuf,
    finish: Option<PathBuf>,
    logger: Option<PathBuf>,
    start_down: bool,
    notification_fd: Option<i32>,
}

/// `service.toml` as written. Values that need checking keep their position.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawService {
    restart: Option<Spanned<String>>,
    success_exit_codes: Option<Vec<Spanned<i64>>>,
    restart_delay: Option<Spanned<Scalar>>,
    restart_delay_max: Option<Spanned<Scalar>>,
    restart_factor: Option<Spanned<f64>>,
    restart_jitter: Option<bool>,
    stable_after: Option<Spanned<Scalar>>,
    max_restarts: Option<Spanned<i64>>,
    restart_window: Option<Spanned<Scalar>>,
    critical: Option<bool>,
    stop_signal: Option<Spanned<Scalar>>,
    stop_timeout: Option<Spanned<Scalar>>,
    finish_timeout: Option<Spanned<Scalar>>,
    user: Option<Spanned<Scalar>>,
    group: Option<Spanned<Scalar>>,
    no_new_privileges: Option<Spanned<bool>>,
    working_dir: Option<Spanned<String>>,
    /// A map sorts by key; the key positions give back the file order.
    env: Option<BTreeMap<Spanned<String>, Spanned<String>>>,
    umask: Option<Spanned<Scalar>>,
    after: Option<Vec<String>>,
    ready: Option<Spanned<RawReady>>,
    ready_timeout: Option<Spanned<Scalar>>,
    health: Option<Spanned<health::RawCheck>>,
    health_interval: Option<Spanned<Scalar>>,
    health_timeout: Option<Spanned<Scalar>>,
    health_failures: Option<Spanned<i64>>,
    log_prefix: Option<bool>,
}

/// Collects the problems of one service.
struct Checker<'a> {
    service: &'a str,
    toml_file: &'a Path,
    source: &'a str,
    problems: Vec<ConfigError>,
}

impl Checker<'_> {
    fn file_problem(&mut self, file: &Path, message: String, fix: &str) {
        self.problems.push(ConfigError {
            service: Some(self.service.to_owned()),
            file: file.to_owned(),
            field: None,
            line_col: None,
            message,
            fix: fix.to_owned(),
        });
    }

    fn toml_problem(&mut self, field: Option<&str>, span: Option<Range<usize>>, bad: Invalid) {
        self.problems.push(ConfigError {
            service: Some(self.service.to_owned()),
            file: self.toml_file.to_owned(),
            field: field.map(str::to_owned),
            line_col: span.map(|span| line_col(self.source, span.start)),
            message: bad.message,
            fix: bad.fix,
        });
    }

    fn serde_problem(&mut self, err: &toml::de::Error) {
        let line = line_at(self.source, err.span().map_or(0, |span| span.start));
        let (field, bad) = explain_serde_error(err.message(), line);
        self.toml_problem(field.as_deref(), err.span(), bad);
    }

    fn failed(&self, field: &str) -> bool {
        self.problems
            .iter()
            .any(|p| p.field.as_deref() == Some(field))
    }

    /// Converts an optional value; a missing one gives `default`, an invalid one is
    /// reported (and also gives `default`, so that checking can go on).
    fn convert<R, T>(
        &mut self,
        field: &str,
        value: Option<Spanned<R>>,
        default: T,
        parse: impl FnOnce(R) -> Result<T, Invalid>,
    ) -> T {
        let Some(value) = value else {
            return default;
        };
        let span = value.span();
        parse(value.into_inner()).unwrap_or_else(|bad| {
            self.toml_problem(Some(field), Some(span), bad);
            default
        })
    }

    /// `relative` inside the folder: `Some(absolute path)` if it is an executable file.
    fn executable(
        &mut self,
        path: &Path,
        dir: &Path,
        relative: &str,
        required: bool,
    ) -> Option<PathBuf> {
        let file = path.join(relative);
        let chmod = format!("chmod +x {}", file.display());
        match fs::metadata(&file) {
            Ok(meta) if !meta.is_file() => self.file_problem(
                &file,
                "is not a regular file".into(),
                "make it a program or script",
            ),
            Ok(meta) if meta.permissions().mode() & 0o111 == 0 => {
                self.file_problem(&file, "is not executable".into(), &chmod)
            }
            Ok(_) => return Some(dir.join(relative)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                if let Ok(target) = fs::read_link(&file) {
                    let message = format!(
                        "is a symbolic link to {}, which does not exist",
                        target.display()
                    );
                    self.file_problem(&file, message, "point the link at the program");
                } else if required {
                    self.file_problem(
                        &file,
                        "does not exist".into(),
                        &format!("create it: the program to run, then {chmod}"),
                    );
                }
            }
            Err(err) => self.file_problem(&file, format!("cannot read it: {err}"), fix_for(&err)),
        }
        None
    }

    /// The s6 `notification-fd` file: a number, like `ready = { notify-fd = N }`.
    fn notification_fd(&mut self, file: &Path) -> Option<i32> {
        let text = match read_config_file(file, MAX_CONFIG_FILE) {
            Ok(text) => text,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return None,
            Err(err) => {
                self.file_problem(file, format!("cannot read it: {err}"), fix_for(&err));
                return None;
            }
        };
        let parsed = text.trim().parse().map_err(|_| {
            invalid(
                format!("\"{}\" is not a number", text.trim()),
                "write the file descriptor number, e.g. 3",
            )
        });
        match parsed.and_then(notify_fd) {
            Ok(fd) => Some(fd),
            Err(bad) => {
                self.file_problem(file, bad.message, &bad.fix);
                None
            }
        }
    }

    fn spec(&mut self, raw: RawService, folder: Folder<'_>, users: &UserDb) -> ServiceSpec {
        let backoff = self.backoff(&raw);
        let user = self.credentials(raw.user, raw.group, raw.no_new_privileges, users);
        let working_dir = self.convert(
            "working-dir",
            raw.working_dir,
            folder.dir.clone(),
            |text| match text.is_empty() {
                true => Err(invalid("is empty", "write a path, or remove the key")),
                false => Ok(folder.dir.join(text)),
            },
        );
        let ready = self.readiness(raw.ready, folder.notification_fd);
        let health = health::RawHealth {
            check: raw.health,
            interval: raw.health_interval,
            timeout: raw.health_timeout,
            failures: raw.health_failures,
        };
        let mut spec = ServiceSpec {
            name: folder.name.to_owned(),
            run: folder.run,
            finish: folder.finish,
            finish_timeout: self.convert("finish-timeout", raw.finish_timeout, secs(5), duration),
            logger: folder.logger,
            start_down: folder.start_down,
            restart: self.convert(
                "restart",
                raw.restart,
                RestartPolicy::Always,
                restart_policy,
            ),
            success_exit_codes: raw.success_exit_codes.map_or(vec![0], |codes| {
                let codes = codes.into_iter();
                codes
                    .map(|code| self.convert("success-exit-codes", Some(code), 0, exit_code))
                    .collect()
            }),
            backoff,
            max_restarts: self.convert("max-restarts", raw.max_restarts, 10, max_restarts),
            restart_window: self.convert("restart-window", raw.restart_window, secs(300), duration),
            critical: raw.critical.unwrap_or(false),
            stop_signal: self.convert("stop-signal", raw.stop_signal, libc::SIGTERM, signal),
            stop_timeout: self.convert("stop-timeout", raw.stop_timeout, secs(5), duration),
            user,
            working_dir,
            env: raw.env.map_or_else(Vec::new, |env| self.env(env)),
            umask: self.convert("umask", raw.umask, None, |v| umask(v).map(Some)),
            after: raw.after.unwrap_or_default(),
            ready,
            ready_timeout: self.convert("ready-timeout", raw.ready_timeout, secs(30), duration),
            health: None,
            check_timeout: secs(5),
            log_prefix: raw.log_prefix.unwrap_or(true),
            dir: folder.dir,
        };
        (spec.health, spec.check_timeout) = self.health(health, &spec);
        spec
    }

    fn backoff(&mut self, raw: &RawService) -> Backoff {
        let initial = self.convert(
            "restart-delay",
            raw.restart_delay.clone(),
            millis(100),
            duration,
        );
        let max = self.convert(
            "restart-delay-max",
            raw.restart_delay_max.clone(),
            secs(30),
            duration,
        );
        if max < initial && !self.failed("restart-delay") && !self.failed("restart-delay-max") {
            let (field, span, bad) = match &raw.restart_delay_max {
                Some(given) => (
                    "restart-delay-max",
                    given.span(),
                    invalid(
                        format!("{max:?} is shorter than restart-delay ({initial:?})"),
                        "make restart-delay-max at least restart-delay",
                    ),
                ),
                None => (
                    "restart-delay",
                    raw.restart_delay.as_ref().map_or(0..0, Spanned::span),
                    invalid(
                        format!(
                            "{initial:?} is longer than restart-delay-max ({max:?} by default)"
                        ),
                        "shorten it, or set restart-delay-max too",
                    ),
                ),
            };
            self.toml_problem(Some(field), Some(span), bad);
        }
        Backoff {
            initial,
            max,
            factor: self.convert("restart-factor", raw.restart_factor.clone(), 2.0, factor),
            stable_after: self.convert(
                "stable-after",
                raw.stable_after.clone(),
                secs(10),
                duration,
            ),
            jitter: raw.restart_jitter.unwrap_or(false),
        }
    }

    fn credentials(
        &mut self,
        user: Option<Spanned<Scalar>>,
        group: Option<Spanned<Scalar>>,
        no_new_privileges: Option<Spanned<bool>>,
        users: &UserDb,
    ) -> Option<Credentials> {
        let group_span = group.as_ref().map(Spanned::span);
        let group = self.convert("group", group, None, |g| user_or_group(g).map(Some));
        if let (None, Some(given)) = (&user, &no_new_privileges) {
            let fix = "add `user = \"...\"` too: it only applies to a service run as a user";
            let bad = invalid("is set without user", fix);
            self.toml_problem(Some("no-new-privileges"), Some(given.span()), bad);
        }
        let Some(user) = user else {
            if group.is_some() {
                let fix = "add `user = \"...\"` too: group only applies together with a user";
                self.toml_problem(
                    Some("group"),
                    group_span,
                    invalid("is set without user", fix),
                );
            }
            return None;
        };
        let user_span = user.span();
        let user = self.convert("user", Some(user), None, |u| user_or_group(u).map(Some))?;
        match users.resolve(&user, group.as_deref()) {
            Ok(credentials) => Some(Credentials {
                no_new_privileges: no_new_privileges.is_none_or(|given| *given.get_ref()),
                ..credentials
            }),
            Err(err) => {
                let span = if err.field == "group" {
                    group_span
                } else {
                    Some(user_span)
                };
                self.toml_problem(Some(err.field), span, invalid(err.message, err.fix));
                None
            }
        }
    }

    /// Checks names and values, and puts the variables back in file order.
    fn env(&mut self, env: BTreeMap<Spanned<String>, Spanned<String>>) -> Vec<(String, String)> {
        let mut pairs: Vec<_> = env.into_iter().collect();
        pairs.sort_by_key(|(key, _)| key.span().start);
        let mut checked = Vec::new();
        for (key, value) in pairs {
            let (key_span, value_span) = (key.span(), value.span());
            let (key, value) = (key.into_inner(), value.into_inner());
            if key.is_empty() || key.contains(['=', '\0']) {
                let fix = "use a name without '=' or NUL, e.g. APP_PORT";
                let bad = invalid(format!("\"{key}\" is not a variable name"), fix);
                self.toml_problem(Some("env"), Some(key_span), bad);
            }
            if value.contains('\0') {
                let bad = invalid(format!("{key} contains a NUL byte"), "remove it");
                self.toml_problem(Some("env"), Some(value_span), bad);
            }
            checked.push((key, value));
        }
        checked
    }

    /// `ready` from service.toml and the s6 `notification-fd` file, which must agree.
    fn readiness(&mut self, ready: Option<Spanned<RawReady>>, file_fd: Option<i32>) -> Readiness {
        let span = ready.as_ref().map(Spanned::span);
        let ready = self.convert("ready", ready, Readiness::Started, readiness);
        match (ready, file_fd) {
            (ready, None) => ready,
            (Readiness::Started, Some(fd)) => Readiness::NotifyFd(fd),
            (Readiness::NotifyFd(fd), Some(file_fd)) if fd == file_fd => Readiness::NotifyFd(fd),
            (ready, Some(file_fd)) => {
                let form = match &ready {
                    Readiness::NotifyFd(fd) => format!("notify-fd = {fd}"),
                    Readiness::Tcp(_) => "tcp".to_owned(),
                    Readiness::Http(_) => "http".to_owned(),
                    Readiness::Command(_) | Readiness::Started => "command".to_owned(),
                };
                let bad = invalid(
                    format!("{form} conflicts with the notification-fd file, which says {file_fd}"),
                    "keep only one of them, or make them say the same fd",
                );
                self.toml_problem(Some("ready"), span, bad);
                ready
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::toml_errors::edit_distance;
    use super::*;
    use crate::services::test_dir::TempDir;
    use std::os::unix::ffi::OsStringExt;

    /// Loads service `svc` with this `service.toml` (if any), with an empty user database.
    fn load(dir: &TempDir, toml: Option<&str>) -> Result<ServiceSpec, Vec<ConfigError>> {
        let path = dir.service("svc", toml);
        load_service(&path, "svc", &UserDb::default())
    }

    fn ok(toml: &str) -> ServiceSpec {
        let dir = TempDir::new("config-ok");
        load(&dir, Some(toml)).unwrap_or_else(|e| panic!("{toml}: {e:?}"))
    }

    /// The problems, each shown without the temp folder.
    fn problems(dir: &TempDir, toml: &str) -> Vec<String> {
        let prefix = format!("{}/", dir.path().display());
        let errors = load(dir, Some(toml)).expect_err(toml);
        errors
            .iter()
            .map(|e| e.to_string().replace(&prefix, ""))
            .collect()
    }

    fn problem(toml: &str) -> String {
        let dir = TempDir::new("config-bad");
        let all = problems(&dir, toml);
        assert_eq!(all.len(), 1, "{all:#?}");
        all.into_iter().next().unwrap()
    }

    #[test]
    fn a_folder_with_only_run_gets_every_default() {
        let dir = TempDir::new("config-defaults");
        let spec = load(&dir, None).unwrap();
        let folder = dir.path().join("svc");
        assert!(folder.is_absolute());
        assert_eq!(
            spec,
            ServiceSpec {
                name: "svc".to_owned(),
                dir: folder.clone(),
                run: folder.join("run"),
                finish: None,
                finish_timeout: secs(5),
                logger: None,
                start_down: false,
                restart: RestartPolicy::Always,
                success_exit_codes: vec![0],
                backoff: Backoff {
                    initial: millis(100),
                    max: secs(30),
                    factor: 2.0,
                    stable_after: secs(10),
                    jitter: false,
                },
                max_restarts: 10,
                restart_window: secs(300),
                critical: false,
                stop_signal: libc::SIGTERM,
                stop_timeout: secs(5),
                user: None,
                working_dir: folder,
                env: vec![],
                umask: None,
                after: vec![],
                ready: Readiness::Started,
                ready_timeout: secs(30),
                health: None,
                check_timeout: secs(5),
                log_prefix: true,
            }
        );
        assert_eq!(load(&dir, Some("")).unwrap(), spec);
    }

    #[test]
    fn every_key_is_read() {
        let spec = ok(r#"
            restart = "on-failure"
            success-exit-codes = [0, 3]
            restart-delay = "250ms"
            restart-delay-max = 60
            restart-factor = 1.5
            restart-jitter = true
            stable-after = "1m"
            max-restarts = 0
            restart-window = "1h"
            critical = true
            stop-signal = "SIGQUIT"
            stop-timeout = "2s"
            finish-timeout = 1
            user = 0
            group = "0"
            working-dir = "data"
            env = { ZED = "last", ALPHA = "first", MIDDLE = "x=y" }
            umask = "027"
            after = ["db", "cache"]
            ready = { tcp = "127.0.0.1:8080" }
            ready-timeout = "45s"
            log-prefix = false
        "#);
        assert_eq!(spec.restart, RestartPolicy::OnFailure);
        assert_eq!(spec.success_exit_codes, [0, 3]);
        let backoff = Backoff {
            initial: millis(250),
            max: secs(60),
            factor: 1.5,
            stable_after: secs(60),
            jitter: true,
        };
        assert_eq!(spec.backoff, backoff);
        assert_eq!((spec.max_restarts, spec.restart_window), (0, secs(3600)));
        assert!(spec.critical);
        assert_eq!(spec.stop_signal, libc::SIGQUIT);
        assert_eq!((spec.stop_timeout, spec.finish_timeout), (secs(2), secs(1)));
        let user = spec.user.unwrap();
        assert_eq!((user.user.as_str(), user.uid, user.gid), ("0", 0, 0));
        assert!(spec.working_dir.is_absolute() && spec.working_dir.ends_with("svc/data"));
        let env: Vec<(&str, &str)> = spec
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            env,
            [("ZED", "last"), ("ALPHA", "first"), ("MIDDLE", "x=y")]
        );
        assert_eq!(spec.umask, Some(0o027));
        assert_eq!(spec.after, ["db", "cache"]);
        assert_eq!(
            spec.ready,
            Readiness::Tcp("127.0.0.1:8080".parse().unwrap())
        );
        assert_eq!(spec.ready_timeout, secs(45));
        assert!(!spec.log_prefix);
    }

    #[test]
    fn other_forms_of_values() {
        assert_eq!(
            ok("working-dir = \"/srv\"").working_dir,
            PathBuf::from("/srv")
        );
        assert_eq!(ok("umask = 0o022").umask, Some(0o022));
        assert_eq!(ok("umask = \"0o7\"").umask, Some(0o7));
        assert_eq!(ok("stop-signal = 10").stop_signal, 10);
        assert_eq!(ok("restart-factor = 1").backoff.factor, 1.0);
        assert_eq!(ok("restart = \"never\"").restart, RestartPolicy::Never);
        assert_eq!(
            ok("ready = { notify-fd = 3 }").ready,
            Readiness::NotifyFd(3)
        );
        let command = ok("ready = { command = \"curl -sf localhost:8080/health\" }").ready;
        assert_eq!(
            command,
            Readiness::Command("curl -sf localhost:8080/health".to_owned())
        );
    }

    #[test]
    fn bad_values_are_located_and_explained() {
        assert_eq!(
            problem("\n\nrestart-delay-max = \"fast\""),
            "svc/service.toml:3:21: restart-delay-max: 'fast' is not a duration\n  write e.g. 500ms, 5s, 2m"
        );
        assert_eq!(
            problem("restart-delay = \"2s\"\nrestart-delay-max = \"1s\""),
            "svc/service.toml:2:21: restart-delay-max: 1s is shorter than restart-delay (2s)\n  \
             make restart-delay-max at least restart-delay"
        );
        assert!(problem("restart-delay = \"1m\"").contains(
            ":1:17: restart-delay: 60s is longer than restart-delay-max (30s by default)"
        ));
        assert!(
            problem("restart-factor = 0.5")
                .starts_with("svc/service.toml:1:18: restart-factor: 0.5 is less than 1")
        );
        assert!(
            problem("stop-signal = \"SIGFOO\"").contains("stop-signal: \"SIGFOO\" is not a signal")
        );
        assert!(problem("stop-timeout = -1").contains("stop-timeout: -1 is negative"));
        assert!(
            problem("restart = \"sometimes\"")
                .contains("use \"always\", \"on-failure\" or \"never\"")
        );
        assert!(
            problem("success-exit-codes = [0, 256]")
                .contains(":1:26: success-exit-codes: 256 is not an exit code")
        );
        assert!(problem("max-restarts = -1").contains("max-restarts: -1 is out of range"));
        assert!(problem("umask = \"999\"").contains("umask: \"999\" is not a umask"));
        assert!(problem("umask = 512").contains("umask: 512 is not a umask"));
        assert!(problem("user = -1").contains("user: -1 is not an id"));
        assert!(
            problem("env = { \"A=B\" = \"x\" }")
                .contains(":1:9: env: \"A=B\" is not a variable name")
        );
        assert!(problem("working-dir = \"\"").contains("working-dir: is empty"));
        assert!(
            problem("ready = { tcp = \"localhost:80\" }")
                .contains("ready: \"localhost:80\" is not an address")
        );
        assert!(problem("ready = { notify-fd = 1 }").contains("use 3 or more"));
        assert!(problem("ready = {}").contains("ready: says nothing"));
        assert!(
            problem("ready = { tcp = \"127.0.0.1:1\", notify-fd = 3 }")
                .contains("more than one form")
        );
    }

    #[test]
    fn all_validation_problems_are_collected() {
        let dir = TempDir::new("config-all");
        let all = problems(
            &dir,
            "umask = \"9\"\nstop-signal = \"NOPE\"\nrestart = \"x\"\n",
        );
        let fields: Vec<&str> = all.iter().map(|p| p.split(": ").nth(1).unwrap()).collect();
        assert_eq!(fields, ["umask", "stop-signal", "restart"]);
    }

    #[test]
    fn unknown_keys_and_bad_syntax_give_line_and_column() {
        assert_eq!(
            problem("restart = \"always\"\n  restrat-delay = \"1s\""),
            "svc/service.toml:2:3: restrat-delay: unknown key\n  did you mean `restart-delay`?"
        );
        assert!(
            problem("ready = { tcpp = \"127.0.0.1:1\" }")
                .contains(":1:11: tcpp: unknown key\n  did you mean `tcp`?")
        );
        assert!(problem("zzzzzzzzzz = 1").contains("known keys here: restart, success-exit-codes"));
        assert_eq!(
            problem("restart = \"always\"\nstop-timeout = 5s\n"),
            "svc/service.toml:2:16: stop-timeout: string values must be quoted, expected literal string\n  \
             fix the TOML syntax here (e.g. strings need quotes: key = \"value\")"
        );
        assert_eq!(
            problem("critical = \"yes\""),
            "svc/service.toml:1:12: critical: invalid type: a string, expected a boolean\n  \
             write a boolean here"
        );
        assert!(problem("max-restarts = \"x\"").ends_with("\n  write an integer here"));
        assert!(problem("ready = 3").contains("ready: invalid type: an integer, expected a table"));
        assert!(problem("a = 1\na = 2").contains(":2:1: a: duplicate key\n  keep only one"));
    }

    #[test]
    fn folder_files_are_checked() {
        let dir = TempDir::new("config-files");
        dir.write("svc/run", "#!/bin/sh\n");
        let errors = load_service(&dir.path().join("svc"), "svc", &UserDb::default()).unwrap_err();
        assert_eq!(errors[0].message, "is not executable");
        assert!(errors[0].fix.starts_with("chmod +x "));
        std::fs::remove_file(dir.path().join("svc/run")).unwrap();
        dir.script("svc/log/other");
        let errors = load_service(&dir.path().join("svc"), "svc", &UserDb::default()).unwrap_err();
        let files: Vec<_> = errors
            .iter()
            .map(|e| e.file.strip_prefix(dir.path()).unwrap())
            .collect();
        assert_eq!(files, [Path::new("svc/run"), Path::new("svc/log/run")]);
        assert!(errors.iter().all(|e| e.message == "does not exist"));
    }

    #[test]
    fn a_fifo_or_a_huge_file_is_a_problem_not_a_hang() {
        let dir = TempDir::new("config-fifo");
        dir.script("svc/run");
        let folder = dir.path().join("svc");
        for name in ["service.toml", "notification-fd"] {
            let fifo =
                std::ffi::CString::new(folder.join(name).into_os_string().into_vec()).unwrap();
            // SAFETY: a valid C string.
            assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let path = folder.clone();
        std::thread::spawn(move || {
            let _ = tx.send(load_service(&path, "svc", &UserDb::default()));
        });
        let result = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("load_service returned");
        let errors = result.unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors
                .iter()
                .all(|e| e.message.contains("not a regular file"))
        );

        let dir = TempDir::new("config-huge");
        dir.script("svc/run");
        let big = format!("# {}\n", "x".repeat(MAX_CONFIG_FILE as usize));
        dir.write("svc/service.toml", &big);
        let errors = load(&dir, None).unwrap_err();
        assert!(errors[0].message.contains("larger than"), "{errors:?}");
    }

    #[test]
    fn optional_files_are_picked_up() {
        let dir = TempDir::new("config-optional");
        dir.script("svc/finish");
        dir.script("svc/log/run");
        dir.write("svc/down", "");
        dir.write("svc/notification-fd", "4\n");
        let spec = load(&dir, None).unwrap();
        assert_eq!(spec.finish, Some(spec.dir.join("finish")));
        assert_eq!(spec.logger, Some(spec.dir.join("log/run")));
        assert!(spec.start_down);
        assert_eq!(spec.ready, Readiness::NotifyFd(4));
        assert_eq!(
            ok_in(&dir, "ready = { notify-fd = 4 }").ready,
            Readiness::NotifyFd(4)
        );
        let conflict = problems(&dir, "\nready = { notify-fd = 3 }");
        assert_eq!(
            conflict,
            [
                "svc/service.toml:2:9: ready: notify-fd = 3 conflicts with the notification-fd file, \
              which says 4\n  keep only one of them, or make them say the same fd"
            ]
        );
        assert!(problems(&dir, "ready = { tcp = \"127.0.0.1:1\" }")[0].contains("tcp conflicts"));
        dir.write("svc/notification-fd", "three");
        assert_eq!(
            problems(&dir, ""),
            [
                "svc/notification-fd: \"three\" is not a number\n  write the file descriptor number, e.g. 3"
            ]
        );
    }

    fn ok_in(dir: &TempDir, toml: &str) -> ServiceSpec {
        load(dir, Some(toml)).unwrap()
    }

    #[test]
    fn users_are_resolved() {
        let dir = TempDir::new("config-users");
        let passwd = dir.write("passwd", "app:x:1000:1000::/home/app:/bin/sh\n");
        let group = dir.write("group", "app:x:1000:\nstaff:x:50:app\n");
        let users = UserDb::load(&passwd, &group);
        let path = dir.service("svc", Some("user = \"app\""));
        let user = load_service(&path, "svc", &users).unwrap().user.unwrap();
        assert_eq!(
            (user.uid, user.gid, user.groups.clone()),
            (1000, 1000, vec![1000, 50])
        );

        let prefix = format!("{}/", dir.path().display());
        let shown = |toml: &str| {
            dir.write("svc/service.toml", toml);
            let errors = load_service(&path, "svc", &users).unwrap_err();
            errors
                .iter()
                .map(|e| e.to_string().replace(&prefix, ""))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            shown("user = \"nobody\""),
            [
                "svc/service.toml:1:8: user: \"nobody\" is not in /etc/passwd\n  add it to \
              /etc/passwd in the image (e.g. `useradd`), or use a numeric id"
            ]
        );
        assert!(
            shown("user = \"app\"\ngroup = \"wheel\"")[0]
                .starts_with("svc/service.toml:2:9: group: \"wheel\" is not in /etc/group")
        );
        assert!(shown("group = \"staff\"")[0].contains("group: is set without user"));
        assert_eq!(
            shown("no-new-privileges = false"),
            [
                "svc/service.toml:1:21: no-new-privileges: is set without user\n  add `user = \
              \"...\"` too: it only applies to a service run as a user"
            ]
        );
        // Set by default for a service run as a user; `false` keeps setuid programs working.
        assert!(user.no_new_privileges);
        dir.write(
            "svc/service.toml",
            "user = \"app\"\nno-new-privileges = false",
        );
        let user = load_service(&path, "svc", &users).unwrap().user.unwrap();
        assert!(!user.no_new_privileges);
    }

    #[test]
    fn explains_serde_errors() {
        assert_eq!(edit_distance("restrat", "restart"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(line_col("ab\ncdé\nf", 7), (2, 4));
        assert_eq!(line_col("x", 99), (1, 2));
    }

    #[test]
    fn sets_key_tells_a_key_written_from_a_default() {
        let dir = TempDir::new("sets-key");
        let with = dir.service("with", Some("stop-timeout = \"1s\"\n"));
        let without = dir.service("without", Some("restart = \"always\"\n"));
        let bare = dir.service("bare", None);
        assert!(sets_key(&with, "stop-timeout"));
        assert!(!sets_key(&without, "stop-timeout"));
        assert!(!sets_key(&bare, "stop-timeout"));
    }
}
