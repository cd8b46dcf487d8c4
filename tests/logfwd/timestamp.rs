//! The timestamp logfwd computes by itself (no date crate): RFC 3339 in UTC with
//! microseconds, checked against `date -u` (GNU coreutils) at instants chosen to catch
//! calendar mistakes: the epoch, leap days, century years, far dates.

#[allow(dead_code)] // the test uses the timestamp only, not the message header
#[path = "../../examples/logfwd/syslog.rs"]
mod syslog;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, UNIX_EPOCH};

/// `YYYY-MM-DDTHH:MM:SS` of each of `instants` (seconds after the epoch), as `date -u`
/// says (one run of `date -f -` for all).
pub fn dates_of(instants: &[u64]) -> Vec<String> {
    let mut date = Command::new("date")
        .args(["-u", "-f", "-", "+%Y-%m-%dT%H:%M:%S"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run date");
    let input: String = instants.iter().map(|s| format!("@{s}\n")).collect();
    let mut stdin = date.stdin.take().expect("piped");
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = date.wait_with_output().expect("run date");
    writer.join().expect("writer").expect("write to date");
    assert!(out.status.success(), "date -u -f - failed");
    let text = String::from_utf8(out.stdout).expect("date's output is text");
    text.lines().map(str::to_string).collect()
}

#[test]
fn timestamps_match_date_at_calendar_edges() {
    let instants = [
        0,
        59,
        86_399,
        86_400,
        951_782_400,   // 2000-02-29
        951_868_799,   // 2000-02-29T23:59:59
        951_868_800,   // 2000-03-01
        1_709_164_800, // 2024-02-29
        1_798_761_599, // 2026-12-31T23:59:59
        4_107_542_400, // 2100-02-28 + 1 day: 2100 is not a leap year
        4_107_628_800,
        253_402_300_799, // 9999-12-31T23:59:59
    ];
    for (secs, date) in instants.iter().zip(dates_of(&instants)) {
        let at = UNIX_EPOCH + Duration::new(*secs, 123_456_789);
        assert_eq!(
            syslog::rfc3339_micros(at),
            format!("{date}.123456Z"),
            "at {secs} s"
        );
    }
}

#[test]
fn every_day_of_four_centuries_matches_date() {
    // One instant per 97 days from 1970 to 2370 (coprime with weeks, months, years).
    let instants: Vec<u64> = (0..1_510)
        .map(|i| 12_345 + i * (97 * 86_400 + 3_601))
        .collect();
    for (secs, date) in instants.iter().zip(dates_of(&instants)) {
        let at = UNIX_EPOCH + Duration::from_secs(*secs);
        assert_eq!(
            syslog::rfc3339_micros(at),
            format!("{date}.000000Z"),
            "at {secs} s"
        );
    }
}
