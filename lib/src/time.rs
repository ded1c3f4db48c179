//! Time as the tools write and read it: durations as people write them (`30s`,
//! `10m`, `1h 30m`, `2days`, or plain seconds) and UTC stamps
//! (`2026-11-21T10:15:00Z`, `20261121-101500`), both through humantime.

use std::time::{Duration, SystemTime};

/// A duration as humantime reads it (`30s`, `10m`, `2h`, `1d`, `1h 30m`), or
/// plain seconds; more than zero, at most [`MAX_DURATION`].
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let d = if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse::<u64>().ok().map(Duration::from_secs)
    } else {
        humantime::parse_duration(s).ok()
    };
    match d {
        None => Err(format!(
            "invalid duration {s:?}: a number and a unit (s, m, h, d), as 90s, 10m, 1h 30m"
        )),
        Some(d) if d.is_zero() => Err(format!("invalid duration {s:?}: must be more than zero")),
        Some(d) if d > MAX_DURATION => Err(format!(
            "invalid duration {s:?}: too long (at most {})",
            show_duration(MAX_DURATION)
        )),
        Some(d) => Ok(d),
    }
}

/// The longest duration taken (a deadline, a timeout): a year.  Longer ones are
/// mistakes, and would not fit in the clock's arithmetic.
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 86_400);

/// A duration as a person writes it: `90s`, `10m`, `2h`, `1h 30m`.  Whole
/// minutes and hours are written in them; a count of seconds under an hour
/// that is not whole minutes stays in seconds, as it was given.
pub fn show_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s < 3600 && !s.is_multiple_of(60) && d.subsec_nanos() == 0 {
        format!("{s}s")
    } else {
        humantime::format_duration(d).to_string()
    }
}

/// Whether `t` lies more than `days` days back (what the prunes keep).
pub fn older_than(t: SystemTime, days: u32) -> bool {
    SystemTime::now()
        .duration_since(t)
        .is_ok_and(|age| age > Duration::from_secs(u64::from(days) * 86_400))
}

/// RFC 3339 in UTC to the second: `2026-11-21T10:15:00Z`.
pub fn utc_stamp(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// `YYYYMMDD-HHMMSS` in UTC: [`utc_stamp`] without its separators.
pub fn compact_stamp(t: SystemTime) -> String {
    let r = utc_stamp(t);
    let mut out = String::with_capacity(15);
    for c in r.chars() {
        match c {
            '0'..='9' => out.push(c),
            'T' => out.push('-'),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("366d"), Ok(MAX_DURATION));
        for bad in [
            "",
            "0s",
            "s",
            "10x",
            "-1s",
            "367d",
            "18446744073709551615",
            "99999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(show_duration(Duration::from_secs(7200)), "2h");
        assert_eq!(show_duration(Duration::from_secs(90)), "90s");
        assert_eq!(show_duration(Duration::from_secs(600)), "10m");
        assert_eq!(show_duration(Duration::from_secs(5400)), "1h 30m");
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2days"), Ok(Duration::from_secs(2 * 86_400)));
    }

    #[test]
    fn stamps() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        assert_eq!(utc_stamp(t), "2026-11-18T11:06:40Z");
        assert_eq!(utc_stamp(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(compact_stamp(leap), "20000229-000000");
    }
}

/// A time on a clock, for a person at a terminal: `m:ss`, or `h:mm:ss` from
/// an hour on.
pub fn clock(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}
