//! The decision of a revocation request (RFC 7009): what presenting a token at
//! `POST /oauth/revoke` undoes. The answer is 200 whatever is decided, so the decision
//! never shows in the response; it only chooses what the store deletes.

use super::ClientId;

/// What the store found under the presented token's digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevocationFacts {
    /// No refresh or access token has this digest (never issued, deleted, or its grant
    /// was revoked and its tokens went with it).
    Unknown,
    /// A refresh token, live or rotated-out, of grant `grant_id`.
    Refresh {
        grant_id: i64,
        owner: ClientId,
        user_email: String,
    },
    /// An access token, expired or not.
    Access { owner: ClientId, user_email: String },
    /// A client-credentials token (no user, no grant), expired or not.
    ClientToken { owner: ClientId },
}

impl RevocationFacts {
    /// Whose token it is, for the audit trail only; no rule reads it.
    pub fn user_email(&self) -> Option<&str> {
        match self {
            RevocationFacts::Refresh { user_email, .. }
            | RevocationFacts::Access { user_email, .. } => Some(user_email),
            RevocationFacts::ClientToken { .. } | RevocationFacts::Unknown => None,
        }
    }
}

/// What to carry out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationDecision {
    /// Revoke the whole grant (RFC 7009 §2.1: revoking a refresh token should end the
    /// grant, and with it every access token issued under it) and audit `token_revoke`.
    RevokeGrant { grant_id: i64 },
    /// Delete this access token only; the grant and its refresh token live on.
    DeleteAccessToken,
    /// Delete this client-credentials token.
    DeleteClientToken,
    /// Change nothing: an unknown token, or another client's (a client may revoke only
    /// its own tokens; RFC 7009 §2.1 says refuse, §2.2 says answer 200 all the same).
    Nothing,
}

/// Decides what `client_id`, authenticated, undoes by presenting a token. A rotated-out
/// refresh token still names its grant, so its owner may end the grant with it; an
/// expired access token is deleted like a live one (it is harmless either way).
pub fn decide_revocation(facts: &RevocationFacts, client_id: &str) -> RevocationDecision {
    match facts {
        RevocationFacts::Refresh {
            grant_id, owner, ..
        } if owner.as_str() == client_id => RevocationDecision::RevokeGrant {
            grant_id: *grant_id,
        },
        RevocationFacts::Access { owner, .. } if owner.as_str() == client_id => {
            RevocationDecision::DeleteAccessToken
        }
        RevocationFacts::ClientToken { owner } if owner.as_str() == client_id => {
            RevocationDecision::DeleteClientToken
        }
        RevocationFacts::Refresh { .. }
        | RevocationFacts::Access { .. }
        | RevocationFacts::ClientToken { .. }
        | RevocationFacts::Unknown => RevocationDecision::Nothing,
    }
}

#[cfg(test)]
mod tests {
    use super::RevocationDecision::{DeleteAccessToken, DeleteClientToken, Nothing, RevokeGrant};
    use super::*;

    /// Token kind × owner vs presenter.
    #[test]
    fn revocation_decisions() {
        let refresh = |owner: &str| RevocationFacts::Refresh {
            grant_id: 7,
            owner: ClientId::new(owner),
            user_email: "u@x".into(),
        };
        let access = |owner: &str| RevocationFacts::Access {
            owner: ClientId::new(owner),
            user_email: "u@x".into(),
        };
        let client = |owner: &str| RevocationFacts::ClientToken {
            owner: ClientId::new(owner),
        };
        let table = [
            (refresh("a"), "a", RevokeGrant { grant_id: 7 }),
            (client("a"), "a", DeleteClientToken),
            (client("b"), "a", Nothing),
            (client("A"), "a", Nothing),
            (refresh("b"), "a", Nothing),
            (access("a"), "a", DeleteAccessToken),
            (access("b"), "a", Nothing),
            (RevocationFacts::Unknown, "a", Nothing),
            // Client ids compare exactly: no case folding, no prefix match.
            (refresh("A"), "a", Nothing),
            (access("ab"), "a", Nothing),
        ];
        for (facts, client, expected) in table {
            assert_eq!(
                decide_revocation(&facts, client),
                expected,
                "{client} presenting {facts:?}"
            );
        }
    }
}
