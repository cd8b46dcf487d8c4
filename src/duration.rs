//! Human durations: `"250ms"`, `"5s"`, `"2m"`, `"1h"`, or a bare number of seconds; and
//! deadlines that such a duration away cannot overflow.

use std::time::{Duration, Instant};

/// Where a deadline lands when `now + wait` is past what an [`Instant`] can hold: as good
/// as never for a container, and far from the limit whatever the monotonic clock reads.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `now + wait`, at most [`FOREVER`] away: a duration from the outside (service.toml, the
/// command line, a control request) may be far longer than an [`Instant`] can reach, and
/// `Instant + Duration` panics on overflow, which for PID 1 would end the container. (The
/// cap also keeps the wall-clock time of any deadline within what a `SystemTime` holds.)
pub fn deadline_after(now: Instant, wait: Duration) -> Instant {
    now.checked_add(wait.min(FOREVER)).unwrap_or(now)
}

/// Parses a duration, or says in one phrase what is wrong and what is accepted.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration; write e.g. 500ms, 5s, 2m"))?;
    let seconds_per_unit = match unit.trim() {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(format!(
                "'{other}' in '{text}' is not a unit; use ms, s, m or h"
            ));
        }
    };
    Duration::try_from_secs_f64(value * seconds_per_unit)
        .map_err(|_| format!("'{text}' is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_each_unit_and_bare_seconds() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn deadlines_saturate_instead_of_overflowing() {
        let now = Instant::now();
        assert_eq!(
            deadline_after(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
        for wait in [
            Duration::MAX,
            Duration::from_secs(u64::MAX / 2),
            FOREVER * 2,
        ] {
            assert_eq!(deadline_after(now, wait), now + FOREVER, "{wait:?}");
        }
        // The longest durations parse_duration accepts, in every unit.
        for text in ["3000000000000000h", "18446744073709550000s"] {
            let wait = parse_duration(text).expect("in range");
            assert!(deadline_after(now, wait) > now);
        }
    }

    #[test]
    fn rejects_garbage_with_a_hint() {
        assert!(parse_duration("").is_err());
        assert!(parse_duration("fast").is_err_and(|e| e.contains("500ms")));
        assert!(parse_duration("5 years").is_err_and(|e| e.contains("not a unit")));
        assert!(parse_duration("-1s").is_err());
    }
}
