//! Why a client's attempt at the token endpoint ended as it did, as a stable reason code
//! for `oauthd client log`. Every refusal type the rule book and client authentication
//! produce is mapped here, in one place, so the log and the decisions cannot drift apart.

use super::{ExchangeDecision, ExchangeRefusal, GrantRefusal, RefreshDecision, RefreshRefusal};

/// One attempt's outcome: `Success`, or the exact reason it was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptReason {
    Success,
    /// Wrong or missing client secret, or a wrong authentication method.
    ClientAuthFailed,
    /// The client is not registered for (or may not use) this grant type.
    UnauthorizedGrant,
    CodeUnknown,
    CodeExpired,
    /// A used code presented again by its own client: the grant was revoked.
    CodeReplayed,
    CodeWrongClient,
    RedirectUriMismatch,
    PkceVerifierMissing,
    PkceMismatch,
    PkceUnexpected,
    RefreshUnknown,
    RefreshExpired,
    RefreshWrongClient,
    RefreshSecretRequired,
    RefreshScopeExceeded,
    /// A rotated-out refresh token presented again: the grant was revoked.
    RefreshReused,
}

impl AttemptReason {
    /// The stable code stored and shown.
    pub fn code(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::ClientAuthFailed => "client_auth_failed",
            Self::UnauthorizedGrant => "unauthorized_grant",
            Self::CodeUnknown => "code_unknown",
            Self::CodeExpired => "code_expired",
            Self::CodeReplayed => "code_replayed",
            Self::CodeWrongClient => "code_wrong_client",
            Self::RedirectUriMismatch => "redirect_uri_mismatch",
            Self::PkceVerifierMissing => "pkce_verifier_missing",
            Self::PkceMismatch => "pkce_mismatch",
            Self::PkceUnexpected => "pkce_unexpected",
            Self::RefreshUnknown => "refresh_unknown",
            Self::RefreshExpired => "refresh_expired",
            Self::RefreshWrongClient => "refresh_wrong_client",
            Self::RefreshSecretRequired => "refresh_secret_required",
            Self::RefreshScopeExceeded => "refresh_scope_exceeded",
            Self::RefreshReused => "refresh_reused",
        }
    }

    /// The outcome column: `ok` or `refused`.
    pub fn outcome(self) -> &'static str {
        if self == Self::Success {
            "ok"
        } else {
            "refused"
        }
    }

    pub fn of_exchange(decision: &ExchangeDecision) -> Self {
        match decision {
            ExchangeDecision::Issue { .. } => Self::Success,
            ExchangeDecision::RevokeReplayed { .. } => Self::CodeReplayed,
            ExchangeDecision::Refuse(refusal) => match refusal {
                ExchangeRefusal::Unknown => Self::CodeUnknown,
                ExchangeRefusal::Expired => Self::CodeExpired,
                ExchangeRefusal::WrongClient => Self::CodeWrongClient,
                ExchangeRefusal::RedirectMismatch => Self::RedirectUriMismatch,
                ExchangeRefusal::VerifierMissing => Self::PkceVerifierMissing,
                ExchangeRefusal::VerifierMismatch => Self::PkceMismatch,
                ExchangeRefusal::VerifierUnexpected => Self::PkceUnexpected,
            },
        }
    }

    pub fn of_refresh(decision: &RefreshDecision) -> Self {
        match decision {
            RefreshDecision::Keep { .. }
            | RefreshDecision::Rotate { .. }
            | RefreshDecision::RotateAgain { .. } => Self::Success,
            RefreshDecision::RevokeReused { .. } => Self::RefreshReused,
            RefreshDecision::Refuse(refusal) => match refusal {
                RefreshRefusal::Unknown => Self::RefreshUnknown,
                RefreshRefusal::Expired => Self::RefreshExpired,
                RefreshRefusal::WrongClient => Self::RefreshWrongClient,
                RefreshRefusal::BoundSecretRequired => Self::RefreshSecretRequired,
                RefreshRefusal::ScopeExceeded => Self::RefreshScopeExceeded,
            },
        }
    }

    /// Both grant refusals are the client's registration, not the request.
    pub fn of_grant_refusal(_: GrantRefusal) -> Self {
        Self::UnauthorizedGrant
    }
}

/// The presented redirect URI as logged: at most this many characters.
pub const PRESENTED_MAX_CHARS: usize = 200;

/// `presented`, cut to [`PRESENTED_MAX_CHARS`] characters (never inside a character).
pub fn truncate_presented(presented: &str) -> String {
    presented.chars().take(PRESENTED_MAX_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_exchange_outcome_has_its_reason() {
        let table = [
            (
                ExchangeDecision::Issue {
                    grant_id: 1,
                    bind_secret_hash: None,
                },
                "success",
            ),
            (
                ExchangeDecision::RevokeReplayed { grant_id: 1 },
                "code_replayed",
            ),
            (
                ExchangeDecision::Refuse(ExchangeRefusal::Unknown),
                "code_unknown",
            ),
            (
                ExchangeDecision::Refuse(ExchangeRefusal::Expired),
                "code_expired",
            ),
            (
                ExchangeDecision::Refuse(ExchangeRefusal::WrongClient),
                "code_wrong_client",
            ),
            (
                ExchangeDecision::Refuse(ExchangeRefusal::RedirectMismatch),
                "redirect_uri_mismatch",
            ),
            (
                ExchangeDecision::Refuse(ExchangeRefusal::VerifierMissing),
                "pkce_verifier_missing",
            ),
            (
                ExchangeDecision::Refuse(ExchangeRefusal::VerifierMismatch),
                "pkce_mismatch",
            ),
            (
                ExchangeDecision::Refuse(ExchangeRefusal::VerifierUnexpected),
                "pkce_unexpected",
            ),
        ];
        for (decision, code) in table {
            assert_eq!(AttemptReason::of_exchange(&decision).code(), code);
        }
    }

    #[test]
    fn every_refresh_outcome_has_its_reason() {
        let scope = None;
        let table = [
            (
                RefreshDecision::Keep {
                    grant_id: 1,
                    scope: scope.clone(),
                },
                "success",
            ),
            (
                RefreshDecision::Rotate {
                    grant_id: 1,
                    scope: scope.clone(),
                },
                "success",
            ),
            (
                RefreshDecision::RevokeReused { grant_id: 1 },
                "refresh_reused",
            ),
            (
                RefreshDecision::Refuse(RefreshRefusal::Unknown),
                "refresh_unknown",
            ),
            (
                RefreshDecision::Refuse(RefreshRefusal::Expired),
                "refresh_expired",
            ),
            (
                RefreshDecision::Refuse(RefreshRefusal::WrongClient),
                "refresh_wrong_client",
            ),
            (
                RefreshDecision::Refuse(RefreshRefusal::BoundSecretRequired),
                "refresh_secret_required",
            ),
            (
                RefreshDecision::Refuse(RefreshRefusal::ScopeExceeded),
                "refresh_scope_exceeded",
            ),
        ];
        for (decision, code) in table {
            assert_eq!(AttemptReason::of_refresh(&decision).code(), code);
        }
    }

    #[test]
    fn only_success_is_ok_and_grant_refusals_are_unauthorized_grant() {
        assert_eq!(AttemptReason::Success.outcome(), "ok");
        assert_eq!(AttemptReason::PkceMismatch.outcome(), "refused");
        for refusal in [
            GrantRefusal::NotRegistered,
            GrantRefusal::NeedsConfidentialClient,
        ] {
            assert_eq!(
                AttemptReason::of_grant_refusal(refusal).code(),
                "unauthorized_grant"
            );
        }
    }

    #[test]
    fn presented_values_are_cut_to_200_characters() {
        assert_eq!(truncate_presented("https://a/cb"), "https://a/cb");
        let long = "é".repeat(300);
        assert_eq!(truncate_presented(&long).chars().count(), 200);
    }
}
