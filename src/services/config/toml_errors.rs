//! The reader's errors turned into problems people can fix: serde's messages rephrased
//! (an unknown key gets the closest known key), and byte offsets turned into the line and
//! column of the file.

use super::values::{Invalid, invalid};

/// serde's message, rephrased where it helps: an unknown key gets its closest known key,
/// a wrong type says what to write instead. The key is taken from the error's line.
pub(super) fn explain_serde_error(message: &str, line: &str) -> (Option<String>, Invalid) {
    let message = message.trim().replace('\n', "; ");
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (key, expected) = rest.split_once('`').unwrap_or((rest, ""));
        return (
            Some(key.to_owned()),
            invalid("unknown key", did_you_mean(key, expected)),
        );
    }
    let key = line
        .split_once('=')
        .map(|(key, _)| key.trim())
        .filter(|key| {
            !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
        });
    let fix = match message.rsplit_once(", expected ") {
        _ if message.starts_with("invalid type: integer") && message.contains(" as i128") => {
            "use a smaller number: integers stop at 9223372036854775807".to_owned()
        }
        Some((_, expected)) if message.starts_with("invalid type") => {
            let what = match expected {
                "i64" => "an integer",
                "f64" => "a number",
                "a sequence" => "a list, e.g. [0, 1] or [\"db\"]",
                "a map" => "a table, e.g. { KEY = \"value\" }",
                "struct RawReady" => "a table, e.g. { tcp = \"127.0.0.1:8080\" }",
                other => other,
            };
            format!("write {what} here")
        }
        _ if message.starts_with("duplicate key") => "keep only one of them".to_owned(),
        _ => "fix the TOML syntax here (e.g. strings need quotes: key = \"value\")".to_owned(),
    };
    let message = without_value(&message.replace("struct RawReady", "a table"));
    (key.map(str::to_owned), invalid(message, fix))
}

/// serde's "invalid type: string \"x\", expected ..." without the value: the message goes
/// to pidvisor's log and events, and the value may be a secret written under the wrong
/// key or with the wrong type (`env = { PIN = 1234 }`). The line and column show it.
fn without_value(message: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some((found, expected)) = message
            .strip_prefix(prefix)
            .and_then(|rest| rest.split_once(", expected "))
        {
            let kind = match found.split(' ').next().unwrap_or("") {
                "integer" if found.contains(" as i128") => "an integer past 64 bits",
                "integer" => "an integer",
                "floating" => "a number",
                "string" | "character" => "a string",
                "boolean" => "a boolean",
                other => other,
            };
            return format!("{prefix}{kind}, expected {expected}");
        }
    }
    message.to_owned()
}

/// `expected` is serde's "expected one of `a`, `b`, ...".
pub(super) fn did_you_mean(key: &str, expected: &str) -> String {
    let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    let closest = known
        .iter()
        .map(|name| (edit_distance(key, name), *name))
        .min()
        .filter(|(distance, _)| *distance <= 3);
    match closest {
        Some((_, name)) => format!("did you mean `{name}`?"),
        None => format!("known keys here: {}", known.join(", ")),
    }
}

/// Levenshtein distance, for "did you mean".
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// The whole line around a byte offset.
pub(super) fn line_at(source: &str, offset: usize) -> &str {
    let start = source
        .get(..offset)
        .and_then(|s| s.rfind('\n'))
        .map_or(0, |i| i + 1);
    source
        .get(start..)
        .and_then(|rest| rest.lines().next())
        .unwrap_or("")
}

/// 1-based line and column (in characters) of a byte offset.
pub(super) fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let before = source.get(..offset).unwrap_or(source);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}
