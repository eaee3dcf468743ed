//! Why a client's attempt at the token endpoint, the authorization endpoint or the device
//! page ended as it did, as a stable reason code for `oauthd client log`. Every refusal
//! type the rule book and client authentication produce is mapped here, in one place, so
//! the log and the decisions cannot drift apart. The authorization request's own
//! refusals ([`AuthorizeRefusal`]) are defined here too, with the error each one sends
//! back to the client.

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
    /// The grant's user is disabled (a code exchange or refresh), or a disabled user
    /// signed in (the authorization endpoint, the device page).
    UserDisabled,
    /// The authorization request named a redirect URI the client did not register.
    RedirectUriNotRegistered,
    /// The authorization request named no redirect URI, and the client has several.
    RedirectUriRequired,
    /// A refused authorization request (its own code).
    Authorize(AuthorizeRefusal),
    /// `prompt=none` without a usable session.
    LoginRequired,
    /// `prompt=none` for a third-party client the user has not allowed.
    ConsentRequired,
    /// The user pressed Deny on the consent screen.
    ConsentDenied,
    /// The user pressed Deny on the device page.
    DeviceDenied,
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
            Self::UserDisabled => "user_disabled",
            Self::RedirectUriNotRegistered => "redirect_uri_not_registered",
            Self::RedirectUriRequired => "redirect_uri_required",
            Self::Authorize(refusal) => refusal.code(),
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
            Self::ConsentDenied => "consent_denied",
            Self::DeviceDenied => "device_denied",
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

    /// Disabling a user revokes their grants: their codes are marked used, their tokens
    /// deleted, and the rule book then refuses them as unknown or replayed codes and
    /// unknown tokens. The log names the disabled user when that is why
    /// (`user_disabled`: the presented code or token is one a disabled user held).
    pub fn with_user_disabled(self, user_disabled: bool) -> Self {
        match self {
            Self::CodeUnknown | Self::CodeReplayed | Self::RefreshUnknown if user_disabled => {
                Self::UserDisabled
            }
            other => other,
        }
    }

    /// A client not registered for the code grant is `unauthorized_grant`, as at the token
    /// endpoint; every other refusal keeps its own code.
    pub fn of_authorize(refusal: AuthorizeRefusal) -> Self {
        match refusal {
            AuthorizeRefusal::UnauthorizedClient => Self::UnauthorizedGrant,
            other => Self::Authorize(other),
        }
    }
}

/// Why an authorization request from a known client, for one of its redirect URIs, is
/// refused; reported to that redirect URI (RFC 6749 §4.1.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorizeRefusal {
    /// The client is not registered for the authorization_code grant.
    UnauthorizedClient,
    ResponseTypeMissing,
    /// Anything but `code`.
    ResponseTypeUnsupported,
    PkceMethodInvalid,
    /// Not 43-128 characters of the PKCE alphabet.
    PkceChallengeInvalid,
    PkceMethodWithoutChallenge,
    PkceRequired,
    PromptInvalid,
    MaxAgeInvalid,
    ScopeNotAllowed,
}

impl AuthorizeRefusal {
    /// The stable code stored and shown (see [`AttemptReason::of_authorize`]).
    fn code(self) -> &'static str {
        match self {
            Self::UnauthorizedClient => "unauthorized_client",
            Self::ResponseTypeMissing => "response_type_missing",
            Self::ResponseTypeUnsupported => "response_type_unsupported",
            Self::PkceMethodInvalid => "pkce_method_invalid",
            Self::PkceChallengeInvalid => "pkce_challenge_invalid",
            Self::PkceMethodWithoutChallenge => "pkce_method_without_challenge",
            Self::PkceRequired => "pkce_required",
            Self::PromptInvalid => "prompt_invalid",
            Self::MaxAgeInvalid => "max_age_invalid",
            Self::ScopeNotAllowed => "scope_not_allowed",
        }
    }

    /// The `error` sent to the redirect URI.
    pub fn error(self) -> &'static str {
        match self {
            Self::UnauthorizedClient => "unauthorized_client",
            Self::ResponseTypeUnsupported => "unsupported_response_type",
            Self::ScopeNotAllowed => "invalid_scope",
            Self::ResponseTypeMissing
            | Self::PkceMethodInvalid
            | Self::PkceChallengeInvalid
            | Self::PkceMethodWithoutChallenge
            | Self::PkceRequired
            | Self::PromptInvalid
            | Self::MaxAgeInvalid => "invalid_request",
        }
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
    fn every_authorization_refusal_has_its_error_and_reason() {
        use AuthorizeRefusal::*;
        let table = [
            (
                UnauthorizedClient,
                "unauthorized_client",
                "unauthorized_grant",
            ),
            (
                ResponseTypeMissing,
                "invalid_request",
                "response_type_missing",
            ),
            (
                ResponseTypeUnsupported,
                "unsupported_response_type",
                "response_type_unsupported",
            ),
            (PkceMethodInvalid, "invalid_request", "pkce_method_invalid"),
            (
                PkceChallengeInvalid,
                "invalid_request",
                "pkce_challenge_invalid",
            ),
            (
                PkceMethodWithoutChallenge,
                "invalid_request",
                "pkce_method_without_challenge",
            ),
            (PkceRequired, "invalid_request", "pkce_required"),
            (PromptInvalid, "invalid_request", "prompt_invalid"),
            (MaxAgeInvalid, "invalid_request", "max_age_invalid"),
            (ScopeNotAllowed, "invalid_scope", "scope_not_allowed"),
        ];
        for (refusal, error, reason) in table {
            assert_eq!(refusal.error(), error, "{refusal:?}");
            let logged = AttemptReason::of_authorize(refusal);
            assert_eq!(logged.code(), reason, "{refusal:?}");
            assert_eq!(logged.outcome(), "refused");
        }
    }

    #[test]
    fn a_dead_grant_of_a_disabled_user_is_user_disabled() {
        use AttemptReason::*;
        // (reason, user disabled, logged)
        let table = [
            (CodeUnknown, true, UserDisabled),
            (CodeUnknown, false, CodeUnknown),
            (RefreshUnknown, true, UserDisabled),
            (RefreshUnknown, false, RefreshUnknown),
            // Other reasons stand: the decision found something more specific first.
            (CodeExpired, true, CodeExpired),
            (CodeReplayed, true, UserDisabled),
            (CodeReplayed, false, CodeReplayed),
            (RefreshReused, true, RefreshReused),
            (Success, true, Success),
        ];
        for (reason, disabled, logged) in table {
            assert_eq!(reason.with_user_disabled(disabled), logged, "{reason:?}");
        }
        assert_eq!(UserDisabled.code(), "user_disabled");
    }

    #[test]
    fn presented_values_are_cut_to_200_characters() {
        assert_eq!(truncate_presented("https://a/cb"), "https://a/cb");
        let long = "é".repeat(300);
        assert_eq!(truncate_presented(&long).chars().count(), 200);
    }
}
