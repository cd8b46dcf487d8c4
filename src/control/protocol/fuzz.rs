//! Fuzzing the control protocol's request parser: whatever line a client sends, it gives
//! a request or a refusal with a stable code and a message (never a panic, never a hang,
//! no stack overflow on deep nesting), memory stays bounded, and a request it accepts
//! renders back to a line that parses to the same request. Inputs: mutations of
//! `tests/fuzz-corpus/control/`, JSON built from the real fields, and arbitrary bytes.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use super::*;
use crate::fuzzing::{bounded_session, cases, corpus, mutate, mutations, peak_bytes};

/// Field names and values of the protocol, and a few that are not.
const FIELDS: &[&str] = &[
    "v",
    "cmd",
    "services",
    "service",
    "timeout",
    "signal",
    "state",
    "restarts",
    "exit_code",
    "follow",
    "extra",
];
const WORDS: &[&str] = &[
    "status", "start", "stop", "restart", "signal", "wait", "shutdown", "events", "ready",
    "failed", "HUP", "RTMIN+3", "web", "",
];

/// Words the mutations insert: JSON syntax, hostile numbers and escapes.
const DICTIONARY: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ":",
    ",",
    "\"",
    "\\",
    "\\u0000",
    "\\ud800",
    "\\udc00\\ud800",
    "\n",
    "\r",
    "\0",
    "\u{ff}",
    "é",
    "𝄞",
    "null",
    "true",
    "1e999",
    "-1e999",
    "-0",
    "1.7976931348623157e308",
    "18446744073709551616",
    "4294967296",
    "-1",
    "256",
    "0.5",
    "1e9",
    "\"cmd\":",
    "\"v\":1,",
    "\"timeout\":",
    "\"restarts\":",
    "\"exit_code\":",
    "\"services\":[",
    "[[[[[[[[",
    "{\"a\":",
];

/// A JSON value built from the protocol's words, nested a little.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        (0..WORDS.len()).prop_map(|i| Value::from(WORDS[i])),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::vec((0..FIELDS.len(), inner), 0..5).prop_map(|pairs| {
                Value::Object(
                    pairs
                        .into_iter()
                        .map(|(k, v)| (FIELDS[k].to_owned(), v))
                        .collect(),
                )
            }),
        ]
    })
}

/// A request-like object: a command, then any of the fields with any values.
fn structured() -> impl Strategy<Value = Vec<u8>> {
    let fields = proptest::collection::vec((0..FIELDS.len(), json_value()), 0..6);
    (0..WORDS.len(), fields).prop_map(|(cmd, fields)| {
        let mut object = Map::new();
        object.insert("cmd".into(), Value::from(WORDS[cmd]));
        for (field, value) in fields {
            object.insert(FIELDS[field].into(), value);
        }
        let mut line = Value::Object(object).to_string().into_bytes();
        line.push(b'\n');
        line
    })
}

fn check_line(bytes: &[u8]) -> Result<(), TestCaseError> {
    let (parsed, peak) = peak_bytes(|| parse_request(bytes));
    let bound = 256 * 1024 + 64 * bytes.len();
    prop_assert!(
        peak <= bound,
        "{peak} bytes held for a {}-byte line",
        bytes.len()
    );
    match parsed {
        Ok(request) => {
            let line = render_request(&request);
            prop_assert_eq!(parse_request(line.as_bytes()), Ok(request), "{}", line);
        }
        Err(refusal) => {
            prop_assert!(!refusal.message.is_empty());
            let reply: Value = serde_json::from_str(&error(&refusal)).expect("a JSON reply");
            prop_assert_eq!(&reply["ok"], &Value::Bool(false));
            prop_assert_eq!(&reply["error"], &Value::from(refusal.code.as_str()));
        }
    }
    Ok(())
}

#[test]
fn fuzz_control_requests_never_panic_hang_or_balloon() {
    bounded_session("fuzz control requests", cases(20000), |cases| {
        let seeds = corpus("control", |file| {
            file.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect()
        });
        let inputs = prop_oneof![
            4 => (0..seeds.len(), mutations(DICTIONARY.len(), 10))
                .prop_map(move |(seed, edits)| mutate(&seeds[seed], &edits, DICTIONARY)),
            4 => structured(),
            1 => proptest::collection::vec(any::<u8>(), 0..MAX_REQUEST),
        ];
        let mut runner = TestRunner::new(Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        });
        if let Err(failure) = runner.run(&inputs, |bytes| check_line(&bytes)) {
            panic!("{failure}");
        }
    });
}

#[test]
fn deeply_nested_and_truncated_json_is_refused() {
    for depth in [127, 128, 129, 4096, MAX_REQUEST] {
        for open in ["[", "{\"a\":"] {
            let line = open.repeat(depth);
            check_line(line.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                parse_request(line.as_bytes()).map_err(|r| r.code),
                Err(ErrorCode::BadRequest)
            );
        }
    }
    let whole = br#"{"cmd":"wait","service":"web","state":"ready","restarts":3,"timeout":10}"#;
    for cut in 0..whole.len() {
        assert_eq!(
            parse_request(&whole[..cut]).map_err(|r| r.code),
            Err(ErrorCode::BadRequest),
            "{}",
            String::from_utf8_lossy(&whole[..cut])
        );
    }
}
