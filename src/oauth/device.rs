//! The Device Authorization Grant (RFC 8628) as rules: the user code's alphabet and
//! normalisation, and the decision for each poll of the token endpoint (pending,
//! `slow_down`, approved, denied, expired). The last-poll times this needs are kept in
//! memory by the caller, so a poll that changes nothing writes nothing.

/// Twenty consonants without look-alikes (RFC 8628 §6.1): 20^8 ≈ 2^34.6 codes.
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
/// Characters in a user code (shown as two groups of four).
pub const USER_CODE_LEN: usize = 8;
/// Seconds added to a device's interval each time it polls too early (RFC 8628 §3.5).
pub const SLOW_DOWN_STEP_SECS: i64 = 5;
/// Slack for a poll that arrives early only because the previous one was answered late
/// (a loaded server, a slow network): earlier than this before its interval is `slow_down`.
pub const POLL_TOLERANCE_MS: u64 = 500;
/// Wrong user codes one client address may enter per window before it must wait: with
/// 2^34.6 codes and a few hundred pending at once, guessing one stays hopeless.
pub const USER_CODE_FAILURES_PER_WINDOW: u32 = 10;
/// The window of [`USER_CODE_FAILURES_PER_WINDOW`], in seconds.
pub const USER_CODE_WINDOW_SECS: u64 = 300;

/// A user code from random bytes: each byte below 240 (a multiple of 20, so every letter
/// is equally likely) picks a letter; the rest are skipped. `None`: not enough bytes.
pub fn user_code_from_bytes(bytes: &[u8]) -> Option<String> {
    let code: String = bytes
        .iter()
        .filter(|b| **b < 240)
        .take(USER_CODE_LEN)
        .map(|b| char::from(USER_CODE_ALPHABET[usize::from(*b % 20)]))
        .collect();
    (code.len() == USER_CODE_LEN).then_some(code)
}

/// A user code as typed, in its stored form: letter case and hyphens (and spaces) do not
/// matter. `None`: it cannot be a user code at all.
pub fn normalize_user_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let valid =
        code.len() == USER_CODE_LEN && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b));
    valid.then_some(code)
}

/// The code as shown to people: `BCDF-GHJK`.
pub fn display_user_code(code: &str) -> String {
    match code.get(..4).zip(code.get(4..)) {
        Some((first, rest)) => format!("{first}-{rest}"),
        None => code.to_owned(),
    }
}

/// Where a device authorization stands in the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceStatus {
    Pending,
    Approved,
    Denied,
}

/// What the store knows about a device code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceFacts {
    pub client_id: String,
    pub status: DeviceStatus,
    pub expires_at: i64,
    pub interval_secs: i64,
}

/// One poll: who polls, and what memory says about the previous poll of this code.
#[derive(Debug, Clone, Copy)]
pub struct PollRequest<'a> {
    pub client_id: &'a str,
    /// Milliseconds since this code's previous poll; `None`: the first poll we remember.
    pub since_last_poll_ms: Option<u64>,
    /// The interval this device must keep, as raised by earlier `slow_down`s (`None`:
    /// the one it was given).
    pub interval_secs: Option<i64>,
}

/// What the token endpoint does with a poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollDecision {
    /// `authorization_pending`; remember this poll with this interval.
    Pending { interval_secs: i64 },
    /// `slow_down`: polled before its interval passed; the interval grows.
    SlowDown { interval_secs: i64 },
    /// Approved: issue tokens and delete the device code (single use).
    Issue,
    /// The user denied: `access_denied`, and delete the device code.
    Denied,
    /// `expired_token`.
    Expired,
    /// Unknown, already redeemed, or another client's: `invalid_grant`.
    Unknown,
}

/// Whether an authorization still awaits its user's answer at Unix time `now`: pending
/// and not expired (the same second a poll reads as expired). The `/device` page shows
/// and records answers only for these.
pub fn awaits_answer(status: DeviceStatus, expires_at: i64, now: i64) -> bool {
    status == DeviceStatus::Pending && now < expires_at
}

/// How long the row a pending poll read may decide the next polls of its code without
/// reading it again. The user's answer in this process is seen at once (the memory drops
/// every remembered row when one is recorded); this bounds how long a change made
/// elsewhere (the client removed or its secret changed with the CLI) goes unseen by
/// pending answers. Tokens are never issued from a remembered row.
pub const REMEMBERED_ROW_SECS: u64 = 30;

/// Whether a poll may be decided over a row a previous poll read `read_ms_ago`: only a
/// pending one, only while fresh.
pub fn remembered_row_usable(facts: &DeviceFacts, read_ms_ago: u64) -> bool {
    facts.status == DeviceStatus::Pending && read_ms_ago < REMEMBERED_ROW_SECS * 1000
}

/// Decides one poll at Unix time `now`.
pub fn decide_poll(
    facts: Option<&DeviceFacts>,
    request: &PollRequest<'_>,
    now: i64,
) -> PollDecision {
    let Some(facts) = facts.filter(|f| f.client_id == request.client_id) else {
        return PollDecision::Unknown;
    };
    if now >= facts.expires_at {
        return PollDecision::Expired;
    }
    match facts.status {
        DeviceStatus::Approved => PollDecision::Issue,
        DeviceStatus::Denied => PollDecision::Denied,
        DeviceStatus::Pending => {
            let interval_secs = request.interval_secs.unwrap_or(facts.interval_secs);
            let too_soon = request.since_last_poll_ms.is_some_and(|ms| {
                i128::from(ms) + i128::from(POLL_TOLERANCE_MS) < i128::from(interval_secs) * 1000
            });
            if too_soon {
                PollDecision::SlowDown {
                    interval_secs: interval_secs.saturating_add(SLOW_DOWN_STEP_SECS),
                }
            } else {
                PollDecision::Pending { interval_secs }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Status × expiry (past, this second, future).
    #[test]
    fn only_pending_unexpired_authorizations_await_an_answer() {
        use DeviceStatus::{Approved, Denied, Pending};
        let table = [
            (Pending, 1_001, true),
            (Pending, 1_000, false),
            (Pending, 999, false),
            (Approved, 1_001, false),
            (Denied, 1_001, false),
            (Approved, 999, false),
        ];
        for (status, expires_at, expected) in table {
            assert_eq!(
                awaits_answer(status, expires_at, 1_000),
                expected,
                "{status:?} until {expires_at}"
            );
        }
    }

    fn facts(status: DeviceStatus) -> DeviceFacts {
        DeviceFacts {
            client_id: "tv".into(),
            status,
            expires_at: 1_000,
            interval_secs: 5,
        }
    }

    #[test]
    fn each_poll_gets_the_answer_its_state_calls_for() {
        use DeviceStatus as S;
        use PollDecision as D;
        // (status, polling client, ms since last poll, remembered interval, now, decision)
        type Row = (
            Option<DeviceStatus>,
            &'static str,
            Option<u64>,
            Option<i64>,
            i64,
            PollDecision,
        );
        let table: [Row; 15] = [
            (None, "tv", None, None, 0, D::Unknown),
            (Some(S::Pending), "other", None, None, 0, D::Unknown),
            (Some(S::Approved), "other", None, None, 0, D::Unknown),
            (
                Some(S::Pending),
                "tv",
                None,
                None,
                0,
                D::Pending { interval_secs: 5 },
            ),
            (
                Some(S::Pending),
                "tv",
                Some(5_000),
                None,
                0,
                D::Pending { interval_secs: 5 },
            ),
            (
                Some(S::Pending),
                "tv",
                Some(4_600),
                None,
                0,
                D::Pending { interval_secs: 5 },
            ),
            (
                Some(S::Pending),
                "tv",
                Some(4_400),
                None,
                0,
                D::SlowDown { interval_secs: 10 },
            ),
            (
                Some(S::Pending),
                "tv",
                Some(0),
                Some(10),
                0,
                D::SlowDown { interval_secs: 15 },
            ),
            (
                Some(S::Pending),
                "tv",
                Some(9_000),
                Some(10),
                0,
                D::SlowDown { interval_secs: 15 },
            ),
            (
                Some(S::Pending),
                "tv",
                Some(10_000),
                Some(10),
                0,
                D::Pending { interval_secs: 10 },
            ),
            (Some(S::Approved), "tv", Some(0), None, 0, D::Issue),
            (Some(S::Denied), "tv", Some(0), None, 0, D::Denied),
            (Some(S::Pending), "tv", None, None, 1_000, D::Expired),
            (Some(S::Approved), "tv", None, None, 1_000, D::Expired),
            (Some(S::Denied), "tv", None, None, 5_000, D::Expired),
        ];
        for (status, client_id, since, interval, now, expected) in table {
            let facts = status.map(facts);
            let request = PollRequest {
                client_id,
                since_last_poll_ms: since,
                interval_secs: interval,
            };
            assert_eq!(
                decide_poll(facts.as_ref(), &request, now),
                expected,
                "{status:?} {client_id} {since:?} {interval:?} at {now}"
            );
        }
    }

    /// Status × age of the remembered row.
    #[test]
    fn only_fresh_pending_rows_answer_from_memory() {
        use DeviceStatus::{Approved, Denied, Pending};
        let limit = REMEMBERED_ROW_SECS * 1000;
        let table = [
            (Pending, 0, true),
            (Pending, limit - 1, true),
            (Pending, limit, false),
            (Pending, u64::MAX, false),
            (Approved, 0, false),
            (Denied, 0, false),
        ];
        for (status, age, expected) in table {
            let facts = DeviceFacts {
                client_id: "tv".into(),
                status,
                expires_at: 1_000,
                interval_secs: 5,
            };
            assert_eq!(
                remembered_row_usable(&facts, age),
                expected,
                "{status:?} {age}"
            );
        }
    }

    #[test]
    fn user_codes_ignore_case_and_hyphens_and_use_only_the_alphabet() {
        let table = [
            ("BCDF-GHJK", Some("BCDFGHJK")),
            ("bcdfghjk", Some("BCDFGHJK")),
            ("bcdf-ghjk", Some("BCDFGHJK")),
            (" bc-df gh-jk ", Some("BCDFGHJK")),
            ("BCDF-GHJ", None),
            ("BCDF-GHJKL", None),
            ("BCDF-GHJA", None),
            ("BCDF-GHJ1", None),
            ("", None),
            ("ßCDF-GHJK", None),
        ];
        for (typed, expected) in table {
            assert_eq!(normalize_user_code(typed).as_deref(), expected, "{typed:?}");
        }
        assert_eq!(display_user_code("BCDFGHJK"), "BCDF-GHJK");
    }

    #[test]
    fn user_codes_from_random_bytes_are_uniform_over_the_alphabet() {
        assert_eq!(
            user_code_from_bytes(&[0, 1, 2, 3, 4, 5, 6, 7]).as_deref(),
            Some("BCDFGHJK")
        );
        assert_eq!(
            user_code_from_bytes(&[19, 20, 239, 240, 255, 0, 0, 0, 0, 0]).as_deref(),
            Some("ZBZBBBBB")
        );
        assert_eq!(user_code_from_bytes(&[250; 16]), None);
        let all: Vec<u8> = (0..=255).collect();
        let code = user_code_from_bytes(&all).unwrap();
        assert!(normalize_user_code(&code).is_some());
    }
}
