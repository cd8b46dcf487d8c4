//! Fuzzing `service.toml`: whatever the file holds, loading the service returns a spec or
//! problems (never a panic, never a hang), every problem names the file and has a fix,
//! its line and column lie inside the file, a loaded spec keeps the documented ranges,
//! and memory stays bounded. Inputs: mutations of `tests/fuzz-corpus/service-toml/`,
//! files built from the real keys and hostile values, and arbitrary bytes.

use std::fs;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use super::values::MAX_RESTARTS_LIMIT;
use super::*;
use crate::fuzzing::{bounded_session, cases, corpus, mutate, mutations, peak_bytes};
use crate::services::test_dir::TempDir;

/// Every key of service.toml, and a few that are not.
const KEYS: &[&str] = &[
    "restart",
    "success-exit-codes",
    "restart-delay",
    "restart-delay-max",
    "restart-factor",
    "restart-jitter",
    "stable-after",
    "max-restarts",
    "restart-window",
    "critical",
    "stop-signal",
    "stop-timeout",
    "finish-timeout",
    "user",
    "group",
    "no-new-privileges",
    "working-dir",
    "env",
    "umask",
    "after",
    "ready",
    "ready-timeout",
    "log-prefix",
    "notify-fd",
    "tcp",
    "command",
    "restart_delay",
    "Restart",
];

/// Words the mutations insert: TOML syntax, hostile numbers, multi-byte characters.
const DICTIONARY: &[&str] = &[
    "=",
    "\"",
    "'",
    "[",
    "]",
    "{",
    "}",
    ",",
    ".",
    "\n",
    "\r\n",
    "#",
    "\"\"\"",
    "'''",
    "[[x]]",
    "[env]",
    "[ready]",
    "\\u0000",
    "\\",
    "\0",
    "\u{feff}",
    "é",
    "日本",
    "𝄞",
    "\u{202e}",
    "9223372036854775807",
    "-9223372036854775808",
    "99999999999999999999",
    "1e308",
    "1e400",
    "nan",
    "-inf",
    "-0",
    "0x7fffffff",
    "0o777",
    "0b1",
    "1_000",
    "true",
    "1979-05-27T07:32:00Z",
    "\"1e30h\"",
    "\"18446744073709551616s\"",
    "\"0.0000001ms\"",
    "\"RTMIN+40\"",
    "\"SIGKILL\"",
    "\"root\"",
    "\"nobody\"",
    "4294967296",
    "[1,[2,[3]]]",
    "{ notify-fd = 3 }",
    "{ tcp = \"[::1]:8080\" }",
    "{ command = \"\" }",
    "restart = ",
    "max-restarts = ",
    "stop-signal = ",
    "after = [\"",
    "env = { A = \"",
];

/// A value of any TOML type, hostile ones often.
fn value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|x| format!("{x:?}")),
        Just("nan".to_owned()),
        Just("inf".to_owned()),
        any::<bool>().prop_map(|b| b.to_string()),
        any::<String>().prop_map(|s| format!("{s:?}")),
        "[0-9]{0,25}(\\.[0-9]{0,5})?(ms|s|m|h|d|)".prop_map(|s| format!("\"{s}\"")),
        "[A-Za-z+0-9-]{0,12}".prop_map(|s| format!("\"{s}\"")),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6)
                .prop_map(|v| format!("[{}]", v.join(", "))),
            proptest::collection::vec(("[a-z-]{1,12}", inner), 0..4).prop_map(|pairs| {
                let pairs: Vec<_> = pairs.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                format!("{{ {} }}", pairs.join(", "))
            }),
        ]
    })
}

/// A file of `key = value` lines, keys from [`KEYS`] (repeats included).
fn structured() -> impl Strategy<Value = Vec<u8>> {
    let line =
        (0..KEYS.len(), value()).prop_map(|(key, value)| format!("{} = {value}\n", KEYS[key]));
    proptest::collection::vec(line, 0..12).prop_map(|lines| lines.concat().into_bytes())
}

/// What one input must give: a result, with its promises kept.
fn check_input(dir: &TempDir, bytes: &[u8]) -> Result<(), TestCaseError> {
    let folder = dir.path().join("svc");
    fs::write(folder.join("service.toml"), bytes).expect("write service.toml");
    let (result, peak) = peak_bytes(|| load_service(&folder, "svc", &UserDb::default()));
    // Generous: serde's tree of the file, the spans, and the messages that quote it.
    let bound = 1024 * 1024 + 64 * bytes.len();
    prop_assert!(
        peak <= bound,
        "{peak} bytes held for a {}-byte file",
        bytes.len()
    );
    match result {
        Ok(spec) => {
            prop_assert!(spec.backoff.initial <= spec.backoff.max);
            prop_assert!(spec.backoff.factor.is_finite() && spec.backoff.factor >= 1.0);
            prop_assert!(spec.max_restarts as i64 <= MAX_RESTARTS_LIMIT);
            prop_assert!(
                spec.success_exit_codes
                    .iter()
                    .all(|c| (0..=255).contains(c))
            );
            prop_assert!((1..=libc::SIGRTMAX()).contains(&spec.stop_signal));
        }
        Err(problems) => {
            prop_assert!(!problems.is_empty());
            let lines = bytes.split(|b| *b == b'\n').count();
            for problem in &problems {
                prop_assert!(problem.file.starts_with(&folder), "{problem}");
                prop_assert!(
                    !problem.message.is_empty() && !problem.fix.is_empty(),
                    "{problem}"
                );
                if let Some((line, col)) = problem.line_col {
                    prop_assert!(line >= 1 && line <= lines && col >= 1, "{problem}");
                }
            }
        }
    }
    Ok(())
}

#[test]
fn fuzz_service_toml_never_panics_hangs_or_balloons() {
    bounded_session("fuzz service.toml", cases(3000), |cases| {
        let seeds = corpus("service-toml", |file| vec![file]);
        let dir = TempDir::new("fuzz-config");
        dir.script("svc/run");
        let inputs = prop_oneof![
            4 => (0..seeds.len(), mutations(DICTIONARY.len(), 12))
                .prop_map(move |(seed, edits)| mutate(&seeds[seed], &edits, DICTIONARY)),
            4 => structured(),
            1 => proptest::collection::vec(any::<u8>(), 0..2048),
        ];
        let mut runner = TestRunner::new(Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        });
        let outcome = runner.run(&inputs, |bytes| check_input(&dir, &bytes));
        if let Err(failure) = outcome {
            panic!("{failure}");
        }
    });
}

/// Inputs that once broke, or that sit on an edge, kept as a regression list.
#[test]
fn corpus_inputs_each_give_a_spec_or_located_problems() {
    let dir = TempDir::new("fuzz-config-corpus");
    dir.script("svc/run");
    for seed in corpus("service-toml", |file| vec![file]) {
        check_input(&dir, &seed).unwrap_or_else(|e| panic!("{e}"));
    }
    let huge = format!("env = {{ A = \"{}\" }}\n", "x".repeat(900 * 1024));
    check_input(&dir, huge.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let deep = format!("after = {}{}\n", "[".repeat(5000), "]".repeat(5000));
    check_input(&dir, deep.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
}
