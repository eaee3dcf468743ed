//! Retention: when what a grant issued stops mattering and may be deleted. The store's
//! housekeeping reads each grant's facts ([`GrantUse`]) and deletes what the
//! [`Retention`] it is given says is dead; it holds no rule of its own.
//!
//! What is kept:
//! - a grant while anything it issued can still be used: an unused, unexpired code, an
//!   unexpired access token, or an unexpired refresh token (rotated-out ones included,
//!   for the grace retry). A revoked grant, or one whose code expired unused, or whose
//!   tokens all expired, is dead and deleted with everything it holds;
//! - a grant's used code as long as the grant lives, so a replay still revokes it;
//! - unexpired access and refresh tokens; expired ones are deleted;
//! - the last [`Retention::refresh_history_per_grant`] rotated-out refresh tokens of a
//!   live grant, for the grace retry and reuse (theft) detection; older ones are deleted;
//! - an expired code for [`Retention::code_keep_after_expiry_secs`], so a replay shortly
//!   after expiry is still recognised.

/// The retention policy the store's housekeeping applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Rotated-out refresh tokens kept per live grant. Presenting one of them again
    /// outside the grace rule is detected as reuse and revokes the grant; an older one is
    /// no longer recognised (it is refused as unknown, and revokes nothing).
    pub refresh_history_per_grant: i64,
    /// How long an expired code is kept, so a replay shortly after expiry is still
    /// recognised (a day covers late retries; after it a code is useless).
    pub code_keep_after_expiry_secs: i64,
}

/// The policy oauthd runs with.
pub const RETENTION: Retention = Retention {
    refresh_history_per_grant: 8,
    code_keep_after_expiry_secs: 86_400,
};

/// What the store read about one grant for the retention decision. Each `last_*` is the
/// latest expiry among those rows (`None`: there is none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GrantUse {
    pub revoked: bool,
    /// Among its unused codes.
    pub last_unused_code_expiry: Option<i64>,
    pub last_access_expiry: Option<i64>,
    /// Among its refresh tokens with an expiry, rotated-out or not.
    pub last_refresh_expiry: Option<i64>,
    /// It holds a refresh token that never expires.
    pub refresh_never_expires: bool,
}

impl Retention {
    /// Whether a grant is dead at `now`: revoked, or nothing it issued can still be used
    /// (an expiry is the first second a row is no longer usable).
    pub fn grant_is_dead(&self, grant: &GrantUse, now: i64) -> bool {
        let usable = |expiry: Option<i64>| expiry.is_some_and(|at| at > now);
        grant.revoked
            || !(usable(grant.last_unused_code_expiry)
                || usable(grant.last_access_expiry)
                || usable(grant.last_refresh_expiry)
                || grant.refresh_never_expires)
    }

    /// Tokens (access, refresh, client-credentials), sessions and device codes that
    /// expired at or before this second are deleted.
    pub fn expired_by(&self, now: i64) -> i64 {
        now
    }

    /// Codes that expired before this second are deleted.
    pub fn codes_expired_before(&self, now: i64) -> i64 {
        now.saturating_sub(self.code_keep_after_expiry_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000;

    /// Revoked × code / access / refresh state (none, expired, this second, live, never).
    #[test]
    fn which_grants_are_dead() {
        let (past, this_second, live) = (Some(NOW - 1), Some(NOW), Some(NOW + 1));
        let nothing = GrantUse::default();
        let table = [
            (nothing, true),
            (
                GrantUse {
                    revoked: true,
                    ..nothing
                },
                true,
            ),
            (
                GrantUse {
                    last_unused_code_expiry: live,
                    ..nothing
                },
                false,
            ),
            (
                GrantUse {
                    last_unused_code_expiry: this_second,
                    ..nothing
                },
                true,
            ),
            (
                GrantUse {
                    last_unused_code_expiry: past,
                    ..nothing
                },
                true,
            ),
            (
                GrantUse {
                    last_access_expiry: live,
                    ..nothing
                },
                false,
            ),
            (
                GrantUse {
                    last_access_expiry: this_second,
                    ..nothing
                },
                true,
            ),
            (
                GrantUse {
                    last_refresh_expiry: live,
                    ..nothing
                },
                false,
            ),
            (
                GrantUse {
                    last_refresh_expiry: past,
                    ..nothing
                },
                true,
            ),
            (
                GrantUse {
                    refresh_never_expires: true,
                    ..nothing
                },
                false,
            ),
            (
                GrantUse {
                    last_access_expiry: past,
                    last_refresh_expiry: past,
                    last_unused_code_expiry: past,
                    ..nothing
                },
                true,
            ),
            (
                GrantUse {
                    revoked: true,
                    last_access_expiry: live,
                    refresh_never_expires: true,
                    ..nothing
                },
                true,
            ),
        ];
        for (grant, dead) in table {
            assert_eq!(RETENTION.grant_is_dead(&grant, NOW), dead, "{grant:?}");
        }
    }

    #[test]
    fn cutoffs() {
        assert_eq!(RETENTION.expired_by(NOW), NOW);
        assert_eq!(RETENTION.codes_expired_before(100_000), 100_000 - 86_400);
        assert_eq!(RETENTION.codes_expired_before(i64::MIN), i64::MIN);
    }
}
