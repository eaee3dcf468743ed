//! Whether a stored token still stands for anything: the one rule bearer validation,
//! introspection and `oauthd check` share. The store reads a token's row with its facts
//! (expiry, revocation, rotation, its user's state) and decides nothing; this says live.

/// What the store read about one token, whatever its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenFacts {
    /// Unix seconds; `None`: never expires (a refresh token issued without a lifetime).
    pub expires_at: Option<i64>,
    /// Its grant was revoked (a client-credentials token has no grant: always false).
    pub grant_revoked: bool,
    /// A refresh token replaced by rotation (kept only for reuse detection).
    pub rotated_out: bool,
    /// Its user is disabled (no user: false).
    pub user_disabled: bool,
}

/// The state of a presented token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    Live,
    /// Past its expiry, otherwise intact.
    Expired,
    /// Withdrawn: its grant revoked, rotated out, or its user disabled. Checked before
    /// expiry, so an expired and revoked token reads as revoked.
    Revoked,
    /// No row under its digest.
    Unknown,
}

/// A token is live until the second it expires (`expires_at` is the first second it no
/// longer is), unless withdrawn.
pub fn liveness(facts: Option<&TokenFacts>, now: i64) -> Liveness {
    let Some(facts) = facts else {
        return Liveness::Unknown;
    };
    if facts.grant_revoked || facts.rotated_out || facts.user_disabled {
        Liveness::Revoked
    } else if facts.expires_at.is_some_and(|at| at <= now) {
        Liveness::Expired
    } else {
        Liveness::Live
    }
}

/// The row read with its facts, if the token it describes is live at `now`.
pub fn live<T>(found: Option<(T, TokenFacts)>, now: i64) -> Option<T> {
    found
        .filter(|(_, facts)| liveness(Some(facts), now) == Liveness::Live)
        .map(|(row, _)| row)
}

#[cfg(test)]
mod tests {
    use super::Liveness::{Expired, Live, Revoked, Unknown};
    use super::*;

    const NOW: i64 = 1_000;

    /// Expiry (none, future, this second, past) × revoked × rotated out × user disabled.
    #[test]
    fn liveness_table() {
        let facts = |expires_at, grant_revoked, rotated_out, user_disabled| TokenFacts {
            expires_at,
            grant_revoked,
            rotated_out,
            user_disabled,
        };
        let table = [
            (Some(facts(None, false, false, false)), Live),
            (Some(facts(Some(NOW + 1), false, false, false)), Live),
            (Some(facts(Some(NOW), false, false, false)), Expired),
            (Some(facts(Some(NOW - 1), false, false, false)), Expired),
            (Some(facts(Some(NOW + 1), true, false, false)), Revoked),
            (Some(facts(Some(NOW + 1), false, true, false)), Revoked),
            (Some(facts(Some(NOW + 1), false, false, true)), Revoked),
            (Some(facts(None, false, true, false)), Revoked),
            (Some(facts(Some(NOW - 1), true, false, false)), Revoked),
            (Some(facts(Some(NOW - 1), false, false, true)), Revoked),
            (None, Unknown),
        ];
        for (facts, expected) in table {
            assert_eq!(liveness(facts.as_ref(), NOW), expected, "{facts:?}");
        }
    }

    #[test]
    fn live_keeps_only_live_rows() {
        let live_facts = TokenFacts {
            expires_at: Some(NOW + 1),
            grant_revoked: false,
            rotated_out: false,
            user_disabled: false,
        };
        let expired = TokenFacts {
            expires_at: Some(NOW),
            ..live_facts
        };
        assert_eq!(live(Some(("a", live_facts)), NOW), Some("a"));
        assert_eq!(live(Some(("a", expired)), NOW), None);
        assert_eq!(live::<&str>(None, NOW), None);
    }
}
