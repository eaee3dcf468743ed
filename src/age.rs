//! Ages and durations written as a count and a unit (`90s`, `15m`, `2h`, `7d`, `2w`), for
//! `audit --since`, `audit prune --older-than` and `serve --audit-retention`.

/// Seconds in `raw` (`<digits><s|m|h|d|w>`), or `None` when it is not such an age.
pub fn secs(raw: &str) -> Option<i64> {
    let unit_at = raw.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = raw.split_at(unit_at);
    if digits.is_empty() {
        return None;
    }
    let count: i64 = digits.parse().ok()?;
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return None,
    };
    count.checked_mul(unit_secs)
}

/// A clap value parser: a positive age (`365d`), else a usage error.
pub fn positive(raw: &str) -> Result<std::time::Duration, String> {
    match secs(raw) {
        Some(secs) if secs > 0 => Ok(std::time::Duration::from_secs(secs.unsigned_abs())),
        _ => Err(format!(
            "{raw:?} is not a duration: use a count and a unit, e.g. 90s, 15m, 2h, 365d, 2w"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_have_digits_then_one_unit() {
        assert_eq!(secs("90s"), Some(90));
        assert_eq!(secs("365d"), Some(365 * 86_400));
        assert_eq!(secs("2w"), Some(1_209_600));
        for bad in [
            "",
            "d",
            "10",
            "10y",
            "1.5d",
            "-1d",
            "10 d",
            "99999999999999999999d",
        ] {
            assert_eq!(secs(bad), None, "{bad:?}");
        }
        assert!(positive("0d").is_err());
        assert_eq!(positive("1h"), Ok(std::time::Duration::from_secs(3600)));
    }
}
