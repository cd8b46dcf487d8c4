//! s6-overlay's `S6_*` variables, read where the matching `PIDVISOR_*` one is unset (so
//! that an image made for s6-overlay runs unchanged), and pidvisor's own s6 settings
//! (`PIDVISOR_S6_COMPAT`, `PIDVISOR_S6_DIR`). s6 gives times in milliseconds.
//!
//! | s6-overlay | pidvisor |
//! |---|---|
//! | `S6_BEHAVIOUR_IF_STAGE2_FAILS` 0, 1 / 2 | init-continue-on-error on / off |
//! | `S6_KILL_GRACETIME` | `--grace` |
//! | `S6_KILL_FINISH_MAXTIME` | `--finish-timeout` |
//! | `S6_CMD_WAIT_FOR_SERVICES` 0 / 1, `..._MAXTIME` | `--main-wait` 0 / the max time |
//! | `S6_SERVICES_GRACETIME` | the stop-timeout of services whose service.toml sets none |
//! | `S6_KEEP_ENV` | read by `with-contenv` itself |
//! | `S6_LOGGING` 1 or 2 | not honoured: a note at start |

use std::path::PathBuf;
use std::time::Duration;

use super::{Options, UsageError};
use crate::s6::DEFAULT_S6_DIR;

/// s6-overlay v2's default for `S6_CMD_WAIT_FOR_SERVICES_MAXTIME`.
const S6_WAIT_MAXTIME_DEFAULT: Duration = Duration::from_millis(5000);

/// Applies the `S6_*` variables (call it before the `PIDVISOR_*` ones, which win).
pub(super) fn apply<E>(options: &mut Options, env: &E) -> Result<(), UsageError>
where
    E: Fn(&str) -> Option<String>,
{
    let var = |name: &str| {
        env(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let compat = match var("PIDVISOR_S6_COMPAT") {
        Some(v) => super::parse_bool(&v, "PIDVISOR_S6_COMPAT")?,
        None => true,
    };
    options.s6_dir = compat.then(|| {
        var("PIDVISOR_S6_DIR").map_or_else(|| PathBuf::from(DEFAULT_S6_DIR), PathBuf::from)
    });
    if !compat {
        return Ok(());
    }
    if let Some(v) = var("S6_BEHAVIOUR_IF_STAGE2_FAILS") {
        options.init_continue_on_error = match v.as_str() {
            "0" | "1" => true,
            "2" => false,
            _ => {
                return Err(UsageError(format!(
                    "S6_BEHAVIOUR_IF_STAGE2_FAILS: '{v}' is not 0, 1 or 2"
                )));
            }
        };
    }
    if let Some(v) = var("S6_KILL_GRACETIME") {
        options.grace = millis(&v, "S6_KILL_GRACETIME")?;
    }
    if let Some(v) = var("S6_KILL_FINISH_MAXTIME") {
        options.finish_timeout = millis(&v, "S6_KILL_FINISH_MAXTIME")?;
    }
    match var("S6_CMD_WAIT_FOR_SERVICES").as_deref() {
        None => {}
        Some("0") => options.main_wait = Some(Duration::ZERO),
        Some(_) => {
            let most = match var("S6_CMD_WAIT_FOR_SERVICES_MAXTIME") {
                Some(v) => millis(&v, "S6_CMD_WAIT_FOR_SERVICES_MAXTIME")?,
                None => S6_WAIT_MAXTIME_DEFAULT,
            };
            // s6's 0: no limit.
            options.main_wait = (!most.is_zero()).then_some(most);
        }
    }
    if let Some(v) = var("S6_SERVICES_GRACETIME") {
        options.services_stop_timeout = Some(millis(&v, "S6_SERVICES_GRACETIME")?);
    }
    if let Some(v) = var("S6_LOGGING").filter(|v| v != "0") {
        options.notes.push(format!(
            "S6_LOGGING={v} is not honoured: the services' output goes to pidvisor's \
             stdout and stderr, prefixed with their names (give a service a log/run for a \
             logger of its own)"
        ));
    }
    Ok(())
}

fn millis(value: &str, source: &str) -> Result<Duration, UsageError> {
    value
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| {
            UsageError(format!(
                "{source}: '{value}' is not a number of milliseconds (s6-overlay's unit)"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(vars: &[(&str, &str)]) -> Result<Options, UsageError> {
        let mut options = Options::default();
        let env = |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        };
        apply(&mut options, &env).map(|()| options)
    }

    #[test]
    fn s6_variables_set_their_pidvisor_counterparts() {
        let o = options(&[
            ("S6_BEHAVIOUR_IF_STAGE2_FAILS", "0"),
            ("S6_KILL_GRACETIME", "3000"),
            ("S6_KILL_FINISH_MAXTIME", "750"),
            ("S6_CMD_WAIT_FOR_SERVICES", "1"),
        ])
        .unwrap();
        assert!(o.init_continue_on_error);
        assert_eq!(o.grace, Duration::from_secs(3));
        assert_eq!(o.finish_timeout, Duration::from_millis(750));
        assert_eq!(o.main_wait, Some(Duration::from_millis(5000)));
        assert_eq!(o.s6_dir, Some(PathBuf::from("/var/run/s6")));
        let o = options(&[
            ("S6_BEHAVIOUR_IF_STAGE2_FAILS", "2"),
            ("S6_CMD_WAIT_FOR_SERVICES", "1"),
            ("S6_CMD_WAIT_FOR_SERVICES_MAXTIME", "0"),
        ])
        .unwrap();
        assert!(!o.init_continue_on_error);
        assert_eq!(o.main_wait, None);
        let o = options(&[("S6_CMD_WAIT_FOR_SERVICES", "0")]).unwrap();
        assert_eq!(o.main_wait, Some(Duration::ZERO));
    }

    #[test]
    fn what_is_not_honoured_is_noted_and_bad_values_are_errors() {
        let o = options(&[("S6_LOGGING", "1"), ("S6_SERVICES_GRACETIME", "30000")]).unwrap();
        assert_eq!(o.notes.len(), 1);
        assert_eq!(o.services_stop_timeout, Some(Duration::from_secs(30)));
        assert!(options(&[("S6_LOGGING", "0")]).unwrap().notes.is_empty());
        let err = options(&[("S6_KILL_GRACETIME", "3s")]).unwrap_err();
        assert!(err.0.contains("milliseconds"), "{}", err.0);
        assert!(options(&[("S6_BEHAVIOUR_IF_STAGE2_FAILS", "3")]).is_err());
    }

    #[test]
    fn compatibility_can_be_turned_off_or_moved() {
        let o = options(&[("PIDVISOR_S6_COMPAT", "0"), ("S6_KILL_GRACETIME", "1")]).unwrap();
        assert_eq!(o.s6_dir, None);
        assert_eq!(o.grace, super::super::DEFAULT_GRACE);
        let o = options(&[("PIDVISOR_S6_DIR", "/tmp/s6")]).unwrap();
        assert_eq!(o.s6_dir, Some(PathBuf::from("/tmp/s6")));
    }
}
