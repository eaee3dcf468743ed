//! Parsing `audit --since`: an RFC 3339 date-time (`2026-11-28T10:00:00Z`, any offset), a
//! date (`2026-11-28`, midnight UTC), or an age before now (`90s`, `15m`, `2h`, `7d`,
//! `2w`). Pure functions over text, so every form is unit-tested without a clock;
//! [`arg`] is the clap value parser, so a bad `--since` is a usage error (exit 2).

use super::validate::Invalid;

/// `--since`: Unix seconds for `raw`, ages counted back from the current time.
pub fn arg(raw: &str) -> Result<i64, Invalid> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    parse(raw, now)
}

/// Unix seconds for `raw`, with ages counted back from `now`.
pub fn parse(raw: &str, now: i64) -> Result<i64, Invalid> {
    let parsed = if raw.chars().next().is_some_and(|c| c.is_ascii_digit())
        && raw.len() <= 12
        && !raw.contains('-')
    {
        age(raw).and_then(|secs| now.checked_sub(secs))
    } else {
        date_time(raw)
    };
    parsed.ok_or_else(|| {
        Invalid(format!(
            "{raw:?}: use an RFC 3339 time (2026-11-28T10:00:00Z), a date (2026-11-28) or an age (15m, 2h, 7d)"
        ))
    })
}

fn age(raw: &str) -> Option<i64> {
    crate::age::secs(raw)
}

/// `YYYY-MM-DD`, or that followed by `T` (or a space) `HH:MM:SS[.frac]` and `Z` or `±HH:MM`.
fn date_time(raw: &str) -> Option<i64> {
    let date = raw.get(..10)?;
    let days = days_from_date(date)?;
    let rest = &raw[10..];
    if rest.is_empty() {
        return Some(days * 86_400);
    }
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    let (hour, minute, second) = (
        number(rest.get(0..2)?)?,
        number(rest.get(3..5)?)?,
        number(rest.get(6..8)?)?,
    );
    if rest.get(2..3)? != ":" || rest.get(5..6)? != ":" || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut zone = &rest[8..];
    if let Some(fraction) = zone.strip_prefix('.') {
        let digits = fraction
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(fraction.len());
        if digits == 0 {
            return None;
        }
        zone = &fraction[digits..];
    }
    let offset = match zone {
        "Z" | "z" => 0,
        _ => {
            let sign = match zone.get(..1)? {
                "+" => 1,
                "-" => -1,
                _ => return None,
            };
            let (oh, om) = (number(zone.get(1..3)?)?, number(zone.get(4..6)?)?);
            if zone.len() != 6 || zone.get(3..4)? != ":" || oh > 23 || om > 59 {
                return None;
            }
            sign * (oh * 3600 + om * 60)
        }
    };
    Some(days * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

fn number(digits: &str) -> Option<i64> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Days since 1970-01-01 for a valid `YYYY-MM-DD` (Howard Hinnant's days-from-civil).
fn days_from_date(date: &str) -> Option<i64> {
    if date.get(4..5)? != "-" || date.get(7..8)? != "-" {
        return None;
    }
    let (year, month, day) = (
        number(date.get(..4)?)?,
        number(date.get(5..7)?)?,
        number(date.get(8..10)?)?,
    );
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&month) || day < 1 || day > month_days[(month - 1) as usize] {
        return None;
    }
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::iso8601;

    #[test]
    fn dates_and_times_round_trip_through_iso8601() {
        for text in [
            "1970-01-01T00:00:00Z",
            "2000-02-29T00:00:00Z",
            "2026-11-28T10:00:00Z",
            "2026-12-31T23:59:59Z",
        ] {
            let unix = parse(text, 0).ok();
            assert_eq!(unix.map(iso8601).as_deref(), Some(text));
        }
        assert_eq!(
            parse("2026-11-28", 0).ok().map(iso8601).as_deref(),
            Some("2026-11-28T00:00:00Z")
        );
        assert_eq!(
            parse("2026-11-28T12:30:00.123+02:30", 0)
                .ok()
                .map(iso8601)
                .as_deref(),
            Some("2026-11-28T10:00:00Z")
        );
        assert_eq!(
            parse("2026-11-28t10:00:00-01:00", 0)
                .ok()
                .map(iso8601)
                .as_deref(),
            Some("2026-11-28T11:00:00Z")
        );
    }

    #[test]
    fn ages_count_back_from_now() {
        assert_eq!(parse("15m", 10_000).ok(), Some(10_000 - 900));
        assert_eq!(parse("2h", 10_000).ok(), Some(10_000 - 7200));
        assert_eq!(parse("7d", 1_000_000).ok(), Some(1_000_000 - 604_800));
        assert_eq!(parse("30s", 100).ok(), Some(70));
    }

    #[test]
    fn nonsense_is_refused() {
        for bad in [
            "",
            "yesterday",
            "15",
            "15x",
            "m",
            "-5m",
            "99999999999999999d",
            "2026-13-01",
            "2026-02-30",
            "2026-11-28T",
            "2026-11-28T25:00:00Z",
            "2026-11-28T10:00:00",
            "2026-11-28T10:00:00+0100",
            "2026-11-28T10:00:00.Z",
            "2026-1-28",
            "２０２６-11-28",
        ] {
            assert!(parse(bad, 1_000_000).is_err(), "{bad:?}");
        }
    }
}
