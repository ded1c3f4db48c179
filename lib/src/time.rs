//! Time as the tools write and read it: durations (`30s`, `10m`, `2h`, `1d`),
//! UTC stamps (`2026-11-21T10:15:00Z`, `20261121-101500`), without a calendar
//! library: the proleptic Gregorian calendar of Howard Hinnant's civil_from_days.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `30s`, `10m`, `2h`, `1d`, or plain seconds; more than zero, at most
/// [`MAX_DURATION`].
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: a number and s, m, h or d"))?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("invalid duration {s:?}: a number and s, m, h or d")),
    };
    match n.checked_mul(mult) {
        Some(0) => Err(format!("invalid duration {s:?}: must be more than zero")),
        Some(secs) if secs <= MAX_DURATION.as_secs() => Ok(Duration::from_secs(secs)),
        _ => Err(format!(
            "invalid duration {s:?}: too long (at most {})",
            show_duration(MAX_DURATION)
        )),
    }
}

/// The longest duration taken (a deadline, a timeout): a year.  Longer ones are
/// mistakes, and would not fit in the clock's arithmetic.
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 86_400);

/// A duration as a person writes it: `90s`, `10m`, `2h`.
pub fn show_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s.is_multiple_of(3600) && s > 0 {
        format!("{}h", s / 3600)
    } else if s.is_multiple_of(60) && s > 0 {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// The UTC calendar date of a day count since 1970-01-01 (Howard Hinnant's
/// civil_from_days).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `YYYYMMDD-HHMMSS` in UTC.
pub fn compact_stamp(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (y, m, d) = civil(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// RFC 3339 in UTC, for the logs.
pub fn utc_stamp(t: SystemTime) -> String {
    let c = compact_stamp(t);
    format!(
        "{}-{}-{}T{}:{}:{}Z",
        &c[0..4],
        &c[4..6],
        &c[6..8],
        &c[9..11],
        &c[11..13],
        &c[13..15]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
            "1.5h",
            "1h30m",
            "367d",
            "18446744073709551615",
            "99999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(show_duration(Duration::from_secs(7200)), "2h");
        assert_eq!(show_duration(Duration::from_secs(90)), "90s");
        assert_eq!(show_duration(Duration::from_secs(600)), "10m");
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
