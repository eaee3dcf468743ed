//! The decision of an authorization-code exchange (RFC 6749 §4.1.3, RFC 7636 §4.6): from
//! what the store knows about the code, who presents it and what they sent, decide
//! whether to issue tokens, to revoke the grant of a replayed code, or to refuse with no
//! side effect.

use super::{pkce_verifies, ClientId, PkceMethod, Presenter, RedirectUri, Scope, SecretHash};

/// What the store knows about a presented code and its grant.
#[derive(Debug, Clone)]
pub struct CodeFacts {
    pub grant_id: i64,
    pub client_id: ClientId,
    pub scope: Option<Scope>,
    pub redirect_uri: String,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub expires_at: i64,
    pub used: bool,
    /// The grant was revoked or its user is disabled.
    pub grant_dead: bool,
    pub bound_secret_hash: Option<Vec<u8>>,
    /// For the audit trail only; no rule reads it.
    pub user_email: String,
}

/// What the client sent with the code.
#[derive(Debug, Clone, Copy)]
pub struct ExchangeRequest<'a> {
    pub presenter: Presenter<'a>,
    pub redirect_uri: Option<&'a RedirectUri>,
    pub code_verifier: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExchangeDecision {
    /// Mark the code used, bind the presented secret to the grant when given, and issue
    /// an access and a refresh token.
    Issue {
        grant_id: i64,
        bind_secret_hash: Option<SecretHash>,
    },
    /// The code's own client presented a used code again: revoke everything the grant
    /// issued (RFC 6749 §4.1.2) and audit `code_replay`.
    RevokeReplayed { grant_id: i64 },
    /// Refuse; nothing changes, and the code stays usable if it was.
    Refuse(ExchangeRefusal),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExchangeRefusal {
    /// No such code, its grant is revoked or its user disabled, or a used code presented
    /// by someone other than its own client.
    Unknown,
    Expired,
    WrongClient,
    RedirectMismatch,
    VerifierMissing,
    VerifierMismatch,
    /// A verifier for a code issued without a challenge: a downgrade attempt (RFC 9700
    /// §2.1.1).
    VerifierUnexpected,
}

/// Decides an exchange. `facts` is `None` for an unknown code.
pub fn decide_exchange(
    facts: Option<&CodeFacts>,
    request: &ExchangeRequest<'_>,
    now: i64,
) -> ExchangeDecision {
    use ExchangeDecision::Refuse;
    let Some(code) = facts else {
        return Refuse(ExchangeRefusal::Unknown);
    };
    if code.used {
        // Revoking on replay protects users from a stolen code, but only the code's own
        // client, authenticated as at the exchange, may trigger it: otherwise any client
        // holding someone else's used code could log that client's users out.
        return if is_own_client(code, &request.presenter) {
            ExchangeDecision::RevokeReplayed {
                grant_id: code.grant_id,
            }
        } else {
            Refuse(ExchangeRefusal::Unknown)
        };
    }
    if code.grant_dead {
        return Refuse(ExchangeRefusal::Unknown);
    }
    if code.expires_at <= now {
        return Refuse(ExchangeRefusal::Expired);
    }
    if code.client_id.as_str() != request.presenter.client_id {
        return Refuse(ExchangeRefusal::WrongClient);
    }
    if let Some(given) = request.redirect_uri {
        let matches = RedirectUri::parse(&code.redirect_uri).is_ok_and(|used| used.matches(given));
        if !matches {
            return Refuse(ExchangeRefusal::RedirectMismatch);
        }
    }
    if let Some(refusal) = check_verifier(code, request.code_verifier) {
        return Refuse(refusal);
    }
    let presenter = request.presenter;
    ExchangeDecision::Issue {
        grant_id: code.grant_id,
        bind_secret_hash: presenter.secret_hash.filter(|_| presenter.public).copied(),
    }
}

/// The presenter is the code's client and, for a grant bound to a public client's secret,
/// presents that secret. (A confidential client's secret was checked before any decision.)
fn is_own_client(code: &CodeFacts, presenter: &Presenter<'_>) -> bool {
    code.client_id.as_str() == presenter.client_id
        && presenter.proves_bound_secret(code.bound_secret_hash.as_deref())
}

fn check_verifier(code: &CodeFacts, verifier: Option<&str>) -> Option<ExchangeRefusal> {
    match (&code.code_challenge, verifier) {
        (Some(challenge), Some(verifier)) => {
            let method = PkceMethod::parse(code.code_challenge_method.as_deref())
                .unwrap_or(PkceMethod::Plain);
            (!pkce_verifies(method, challenge, verifier))
                .then_some(ExchangeRefusal::VerifierMismatch)
        }
        (Some(_), None) => Some(ExchangeRefusal::VerifierMissing),
        (None, Some(_)) => Some(ExchangeRefusal::VerifierUnexpected),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::ExchangeDecision::{Issue, Refuse, RevokeReplayed};
    use super::ExchangeRefusal::*;
    use super::*;

    const NOW: i64 = 1_000_000;
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    const SECRET: SecretHash = [7; 32];
    const OTHER_SECRET: SecretHash = [8; 32];

    #[derive(Clone, Copy, Debug)]
    enum Code {
        Fresh,
        Expired,
        Used,
        UsedBound,
        Dead,
        UsedDead,
        WithChallenge,
    }

    fn facts(code: Code) -> CodeFacts {
        CodeFacts {
            grant_id: 7,
            client_id: "a".into(),
            scope: None,
            redirect_uri: "https://a.example/cb".into(),
            code_challenge: matches!(code, Code::WithChallenge).then(|| CHALLENGE.into()),
            code_challenge_method: matches!(code, Code::WithChallenge).then(|| "S256".into()),
            expires_at: if matches!(code, Code::Expired) {
                NOW
            } else {
                NOW + 60
            },
            used: matches!(code, Code::Used | Code::UsedBound | Code::UsedDead),
            grant_dead: matches!(code, Code::Dead | Code::UsedDead),
            bound_secret_hash: matches!(code, Code::UsedBound).then(|| SECRET.to_vec()),
            user_email: "u@x".into(),
        }
    }

    fn presenter(
        client_id: &'static str,
        public: bool,
        secret: Option<&'static SecretHash>,
    ) -> Presenter<'static> {
        Presenter {
            client_id,
            public,
            secret_hash: secret,
        }
    }

    fn decide(code: Code, who: Presenter<'_>, verifier: Option<&str>) -> ExchangeDecision {
        let request = ExchangeRequest {
            presenter: who,
            redirect_uri: None,
            code_verifier: verifier,
        };
        decide_exchange(Some(&facts(code)), &request, NOW)
    }

    /// One row per state that matters: code state × presenter × verifier → decision.
    #[test]
    fn exchange_decisions() {
        let own = presenter("a", false, Some(&SECRET));
        let own_public = presenter("a", true, None);
        let own_public_secret = presenter("a", true, Some(&SECRET));
        let own_public_other_secret = presenter("a", true, Some(&OTHER_SECRET));
        let other = presenter("b", false, Some(&OTHER_SECRET));
        let other_public = presenter("b", true, None);
        let issue = |bind: Option<SecretHash>| Issue {
            grant_id: 7,
            bind_secret_hash: bind,
        };
        let table: &[(Code, Presenter<'_>, Option<&str>, ExchangeDecision)] = &[
            (Code::Fresh, own, None, issue(None)),
            (Code::Fresh, own_public, None, issue(None)),
            (Code::Fresh, own_public_secret, None, issue(Some(SECRET))),
            (Code::Fresh, other, None, Refuse(WrongClient)),
            (Code::Fresh, other_public, None, Refuse(WrongClient)),
            (Code::Fresh, own, Some(VERIFIER), Refuse(VerifierUnexpected)),
            (Code::Expired, own, None, Refuse(Expired)),
            (Code::Expired, other, None, Refuse(Expired)),
            (Code::Dead, own, None, Refuse(Unknown)),
            // Replay: only the code's own client, authenticated as at the exchange, revokes.
            (Code::Used, own, None, RevokeReplayed { grant_id: 7 }),
            (Code::Used, own_public, None, RevokeReplayed { grant_id: 7 }),
            (Code::Used, other, None, Refuse(Unknown)),
            (Code::Used, other_public, None, Refuse(Unknown)),
            (
                Code::UsedBound,
                own_public_secret,
                None,
                RevokeReplayed { grant_id: 7 },
            ),
            (Code::UsedBound, own_public, None, Refuse(Unknown)),
            (
                Code::UsedBound,
                own_public_other_secret,
                None,
                Refuse(Unknown),
            ),
            (Code::UsedDead, own, None, RevokeReplayed { grant_id: 7 }),
            (Code::UsedDead, other_public, None, Refuse(Unknown)),
            // PKCE.
            (Code::WithChallenge, own, Some(VERIFIER), issue(None)),
            (Code::WithChallenge, own, None, Refuse(VerifierMissing)),
            (
                Code::WithChallenge,
                own,
                Some(&VERIFIER[1..]),
                Refuse(VerifierMismatch),
            ),
            (
                Code::WithChallenge,
                other,
                Some(VERIFIER),
                Refuse(WrongClient),
            ),
        ];
        for (code, who, verifier, expected) in table {
            assert_eq!(
                &decide(*code, *who, *verifier),
                expected,
                "{code:?} presented by {who:?} with verifier {verifier:?}"
            );
        }
    }

    #[test]
    fn unknown_code_and_redirect_mismatch_are_refused() {
        let own = presenter("a", false, Some(&SECRET));
        let request = ExchangeRequest {
            presenter: own,
            redirect_uri: None,
            code_verifier: None,
        };
        assert_eq!(decide_exchange(None, &request, NOW), Refuse(Unknown));
        let elsewhere = RedirectUri::parse("https://a.example/else").expect("uri");
        let same = RedirectUri::parse("HTTPS://a.example/cb").expect("uri");
        let with = |uri| ExchangeRequest {
            redirect_uri: Some(uri),
            ..request
        };
        let code = facts(Code::Fresh);
        assert_eq!(
            decide_exchange(Some(&code), &with(&elsewhere), NOW),
            Refuse(RedirectMismatch)
        );
        assert!(matches!(
            decide_exchange(Some(&code), &with(&same), NOW),
            Issue { .. }
        ));
    }
}
