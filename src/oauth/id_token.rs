//! OpenID Connect claim rules: which claims an id_token and a UserInfo answer carry,
//! decided from the grant's scope and plain facts about the user. No `openid` in the
//! scope, no id_token: [`id_token_claims`] answers `None`, whatever else is asked.

use serde_json::{json, Map, Value};

/// How long an id_token is valid. Retired signing keys stay published this long after
/// their last signature (see `signing_keys`), so every unexpired id_token can be verified.
pub const ID_TOKEN_TTL_SECS: i64 = 3600;

/// What is known about the signed-in user, as the store read it.
#[derive(Debug, Clone, Default)]
pub struct Subject {
    /// The stable user id (`users.id`), the `sub` claim.
    pub user_id: String,
    pub email: String,
    pub name: Option<String>,
    /// (organization name, role) of each membership.
    pub memberships: Vec<(String, String)>,
}

/// The facts of one id_token besides its subject.
#[derive(Debug, Clone)]
pub struct IdTokenFacts<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    /// The scope of the token answer (a refresh may have narrowed the grant's).
    pub scope: Option<&'a str>,
    pub now: i64,
    /// When the user signed in (recorded with the code; kept on the grant for refreshes).
    pub auth_time: Option<i64>,
    /// The authorization request's nonce: only in the id_token of the code exchange.
    pub nonce: Option<&'a str>,
    /// `at_hash` of the access token issued with this id_token.
    pub at_hash: &'a str,
}

/// Whether `scope` holds the name `name`.
pub fn has_scope(scope: Option<&str>, name: &str) -> bool {
    scope.is_some_and(|scope| scope.split_whitespace().any(|s| s == name))
}

/// The claims of an id_token, or `None` when the scope lacks `openid`.
pub fn id_token_claims(facts: &IdTokenFacts<'_>, subject: &Subject) -> Option<Map<String, Value>> {
    if !has_scope(facts.scope, "openid") {
        return None;
    }
    let mut claims = Map::new();
    claims.insert("iss".into(), json!(facts.issuer));
    claims.insert("sub".into(), json!(subject.user_id));
    claims.insert("aud".into(), json!(facts.client_id));
    claims.insert("azp".into(), json!(facts.client_id));
    claims.insert(
        "exp".into(),
        json!(facts.now.saturating_add(ID_TOKEN_TTL_SECS)),
    );
    claims.insert("iat".into(), json!(facts.now));
    if let Some(auth_time) = facts.auth_time {
        claims.insert("auth_time".into(), json!(auth_time));
    }
    if let Some(nonce) = facts.nonce {
        claims.insert("nonce".into(), json!(nonce));
    }
    claims.insert("at_hash".into(), json!(facts.at_hash));
    claims.extend(scoped_claims(facts.scope, subject));
    Some(claims)
}

/// The UserInfo answer: `sub`, then the claims the scope allows; `None` without `openid`
/// (the access token was not issued for OpenID Connect).
pub fn userinfo_claims(scope: Option<&str>, subject: &Subject) -> Option<Map<String, Value>> {
    if !has_scope(scope, "openid") {
        return None;
    }
    let mut claims = Map::new();
    claims.insert("sub".into(), json!(subject.user_id));
    claims.extend(scoped_claims(scope, subject));
    Some(claims)
}

/// Claims by scope: `email` → email and email_verified (an admin registered the address),
/// `profile` → name (when set), `groups` → each organization's name, then `name:role`.
fn scoped_claims(scope: Option<&str>, subject: &Subject) -> Map<String, Value> {
    let mut claims = Map::new();
    if has_scope(scope, "email") {
        claims.insert("email".into(), json!(subject.email));
        claims.insert("email_verified".into(), json!(true));
    }
    if has_scope(scope, "profile") {
        if let Some(name) = &subject.name {
            claims.insert("name".into(), json!(name));
        }
    }
    if has_scope(scope, "groups") {
        let names = subject.memberships.iter().map(|(org, _)| org.clone());
        let roles = subject
            .memberships
            .iter()
            .map(|(org, role)| format!("{org}:{role}"));
        claims.insert(
            "groups".into(),
            json!(names.chain(roles).collect::<Vec<_>>()),
        );
    }
    claims
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject() -> Subject {
        Subject {
            user_id: "u-1".into(),
            email: "ann@example.com".into(),
            name: Some("Ann".into()),
            memberships: vec![
                ("acme".into(), "admin".into()),
                ("beta".into(), "viewer".into()),
            ],
        }
    }

    fn facts(scope: Option<&'static str>, nonce: Option<&'static str>) -> IdTokenFacts<'static> {
        IdTokenFacts {
            issuer: "https://id.example",
            client_id: "app",
            scope,
            now: 1000,
            auth_time: Some(900),
            nonce,
            at_hash: "h",
        }
    }

    /// One row per scope: the claim names the id_token carries beyond the fixed ones.
    #[test]
    fn id_token_claims_follow_the_scope() {
        let fixed = [
            "iss",
            "sub",
            "aud",
            "azp",
            "exp",
            "iat",
            "auth_time",
            "at_hash",
        ];
        let table: &[(Option<&str>, Option<&[&str]>)] = &[
            (None, None),
            (Some(""), None),
            (Some("email profile groups"), None),
            (Some("openidx"), None),
            (Some("openid"), Some(&[])),
            (Some("openid email"), Some(&["email", "email_verified"])),
            (Some("profile openid"), Some(&["name"])),
            (Some("openid groups"), Some(&["groups"])),
            (
                Some("openid email profile groups read"),
                Some(&["email", "email_verified", "name", "groups"]),
            ),
        ];
        for (scope, extra) in table {
            let claims = id_token_claims(&facts(*scope, None), &subject());
            let Some(extra) = extra else {
                assert!(claims.is_none(), "{scope:?}: no id_token without openid");
                continue;
            };
            let claims = claims.expect("an id_token");
            let mut expected: Vec<&str> = fixed.to_vec();
            expected.extend(extra.iter());
            let names: Vec<&str> = claims.keys().map(String::as_str).collect();
            assert_eq!(names, expected, "{scope:?}");
        }
    }

    #[test]
    fn id_token_claim_values() {
        let claims = id_token_claims(
            &facts(Some("openid email profile groups"), Some("n-0S6")),
            &subject(),
        )
        .expect("openid");
        assert_eq!(claims["iss"], "https://id.example");
        assert_eq!(claims["sub"], "u-1");
        assert_eq!(claims["aud"], "app");
        assert_eq!(claims["azp"], "app");
        assert_eq!(claims["iat"], 1000);
        assert_eq!(claims["exp"], 1000 + ID_TOKEN_TTL_SECS);
        assert_eq!(claims["auth_time"], 900);
        assert_eq!(claims["nonce"], "n-0S6");
        assert_eq!(claims["at_hash"], "h");
        assert_eq!(claims["email"], "ann@example.com");
        assert_eq!(claims["email_verified"], true);
        assert_eq!(claims["name"], "Ann");
        assert_eq!(
            claims["groups"],
            json!(["acme", "beta", "acme:admin", "beta:viewer"])
        );
    }

    #[test]
    fn absent_facts_leave_their_claims_out() {
        let mut facts = facts(Some("openid profile groups"), None);
        facts.auth_time = None;
        let nameless = Subject {
            name: None,
            memberships: Vec::new(),
            ..subject()
        };
        let claims = id_token_claims(&facts, &nameless).expect("openid");
        for absent in ["nonce", "auth_time", "name"] {
            assert!(!claims.contains_key(absent), "{absent}");
        }
        assert_eq!(claims["groups"], json!([]));
    }

    #[test]
    fn userinfo_claims_follow_the_scope() {
        let table: &[(Option<&str>, Option<&[&str]>)] = &[
            (None, None),
            (Some("email"), None),
            (Some("openid"), Some(&["sub"])),
            (
                Some("openid email"),
                Some(&["sub", "email", "email_verified"]),
            ),
            (
                Some("openid profile groups"),
                Some(&["sub", "name", "groups"]),
            ),
        ];
        for (scope, expected) in table {
            let claims = userinfo_claims(*scope, &subject());
            let names: Option<Vec<String>> = claims.map(|c| c.keys().cloned().collect());
            let expected: Option<Vec<String>> =
                expected.map(|e| e.iter().map(|s| (*s).to_owned()).collect());
            assert_eq!(names, expected, "{scope:?}");
        }
    }
}
