//! When to ask the ACME server for a certificate: pure decisions over plain times (Unix
//! seconds), so the schedule is tested without a clock or a CA.

/// The first retry after a failure waits this long; each further failure doubles it.
pub const FIRST_BACKOFF_SECS: i64 = 30;
/// Retries never wait longer than this.
pub const MAX_BACKOFF_SECS: i64 = 6 * 3600;

/// `oauthd check` reports a certificate expiring within this long.
pub const EXPIRY_WARNING_SECS: i64 = 14 * 86_400;

/// Whether a certificate valid until `not_after` is within the warning period at `now`.
pub fn expires_soon(not_after: i64, now: i64) -> bool {
    not_after - now < EXPIRY_WARNING_SECS
}

/// Renewal is due at two thirds of the certificate's lifetime.
pub fn renew_at(not_before: i64, not_after: i64) -> i64 {
    not_before + (not_after - not_before).max(0) * 2 / 3
}

/// How long to wait after the `failures`-th consecutive failure (1 for the first).
pub fn backoff_secs(failures: i64) -> i64 {
    let doublings = (failures - 1).clamp(0, 30) as u32;
    FIRST_BACKOFF_SECS
        .saturating_mul(1_i64 << doublings)
        .min(MAX_BACKOFF_SECS)
}

/// When the next attempt is due: `now` when nothing is stored yet; the renewal time of
/// the stored certificate; but never before the backoff of a failure has passed.
pub fn next_attempt(now: i64, validity: Option<(i64, i64)>, retry_after: Option<i64>) -> i64 {
    let due = validity.map_or(now, |(from, to)| renew_at(from, to));
    match retry_after {
        Some(retry) => due.max(retry),
        None => due,
    }
}

/// An instance re-reads the stored certificate at least this often, so one stored by
/// another instance of the same database is served within about this long.
pub const PICKUP_SECS: i64 = 60;

/// Whether to serve the stored certificate instead of the one served now: it is later
/// (another instance renewed it), or nothing is served yet.
pub fn serve_stored(served_not_after: Option<i64>, stored_not_after: Option<i64>) -> bool {
    match (served_not_after, stored_not_after) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(served), Some(stored)) => stored > served,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_at_two_thirds_of_the_lifetime() {
        for (from, to, at) in [(0, 90, 60), (100, 100, 100), (1000, 1030, 1020), (0, -5, 0)] {
            assert_eq!(renew_at(from, to), at, "{from}..{to}");
        }
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        for (failures, secs) in [
            (0, 30),
            (1, 30),
            (2, 60),
            (3, 120),
            (10, 15_360),
            (11, 6 * 3600),
            (99, 6 * 3600),
        ] {
            assert_eq!(backoff_secs(failures), secs, "failure {failures}");
        }
    }

    #[test]
    fn expiry_warning_within_fourteen_days() {
        let day = 86_400;
        for (left, soon) in [
            (-day, true),
            (13 * day, true),
            (14 * day, false),
            (60 * day, false),
        ] {
            assert_eq!(expires_soon(left, 0), soon, "{left}");
        }
    }

    #[test]
    fn a_later_stored_certificate_replaces_the_served_one() {
        for (served, stored, swap) in [
            (None, None, false),
            (None, Some(10), true),
            (Some(10), None, false),
            (Some(10), Some(10), false),
            (Some(20), Some(10), false),
            (Some(10), Some(20), true),
        ] {
            assert_eq!(serve_stored(served, stored), swap, "{served:?} {stored:?}");
        }
    }

    #[test]
    fn next_attempt_table() {
        let now = 1000;
        for (validity, retry, due) in [
            (None, None, 1000),
            (None, Some(1030), 1030),
            (Some((0, 3000)), None, 2000),
            (Some((0, 3000)), Some(2500), 2500),
            (Some((0, 3000)), Some(900), 2000),
        ] {
            assert_eq!(
                next_attempt(now, validity, retry),
                due,
                "{validity:?} {retry:?}"
            );
        }
    }
}
