//! One line of input as one framed syslog message:
//! `LEN SP <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID - - MSG` (RFC 5424 in RFC 6587
//! octet-counting framing). MSGID and STRUCTURED-DATA are nil (`-`).
//!
//! MSG is the line's bytes as they came, without the newline: octet counting needs no
//! escaping, so bytes that are not UTF-8 pass through untouched (the collector decides
//! how to show them; rsyslog escapes control characters as `#ooo`).

use std::time::{SystemTime, UNIX_EPOCH};

/// The parts of the header that are the same for every message.
pub struct Header {
    /// `<PRI>1 ` (priority and version).
    pri: String,
    /// ` HOSTNAME APP-NAME PROCID - - ` (everything after the timestamp).
    rest: String,
}

impl Header {
    pub fn new(facility: u8, severity: u8, hostname: &str, app: &str, procid: u32) -> Header {
        let pri = u32::from(facility) * 8 + u32::from(severity);
        Header {
            pri: format!("<{pri}>1 "),
            rest: format!(" {hostname} {app} {procid} - - "),
        }
    }

    /// The framed message for `line`, stamped `at`.
    pub fn frame(&self, line: &[u8], at: SystemTime) -> Vec<u8> {
        let stamp = rfc3339_micros(at);
        let len = self.pri.len() + stamp.len() + self.rest.len() + line.len();
        let mut frame = Vec::with_capacity(len + 8);
        frame.extend_from_slice(format!("{len} ").as_bytes());
        frame.extend_from_slice(self.pri.as_bytes());
        frame.extend_from_slice(stamp.as_bytes());
        frame.extend_from_slice(self.rest.as_bytes());
        frame.extend_from_slice(line);
        frame
    }
}

/// `2026-12-03T07:27:20.123456Z`: RFC 3339 in UTC with microseconds. A clock before
/// 1970 (never seen in practice) is stamped as the epoch.
pub fn rfc3339_micros(at: SystemTime) -> String {
    let since_epoch = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since_epoch.as_secs();
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let of_day = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60,
        since_epoch.subsec_micros()
    )
}

/// The proleptic Gregorian date of a day counted from 1970-01-01, by whole 400-year
/// eras (146097 days each) counted from 0000-03-01, so that the leap day is the last
/// day of its "year". The arithmetic of Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097); // [0, 146096]
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153; // [0, 11], 0 = March
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}
