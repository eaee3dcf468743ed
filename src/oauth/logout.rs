//! RP-Initiated Logout 1.0: which client a logout request names, where the browser may be
//! sent back, and whether the session ends at once or only after the user confirms.
//!
//! The `id_token_hint` counts only when one of our keys signed it (checked by the caller)
//! and it names this issuer; anything else is refused. It may name the client (whose
//! registered URIs alone are ever redirected to) and the user; a hint naming the
//! session's own user ends the session at once, anything else asks the user first, so a
//! forged link cannot silently sign someone out. An expired hint still counts: it names
//! who signed in, which is all it is used for.

/// What a parsable `id_token_hint` says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HintClaims {
    pub sub: Option<String>,
    pub aud: Vec<String>,
}

/// What the verified claims of an `id_token_hint` say, when they name `issuer`; `None`
/// for a hint issued by someone else (or without `iss`).
pub fn hint_claims(claims: &serde_json::Value, issuer: &str) -> Option<HintClaims> {
    if claims["iss"].as_str() != Some(issuer) {
        return None;
    }
    let text = |v: &serde_json::Value| v.as_str().map(str::to_owned);
    let aud = match &claims["aud"] {
        serde_json::Value::Array(items) => items.iter().filter_map(text).collect(),
        single => text(single).into_iter().collect(),
    };
    Some(HintClaims {
        sub: text(&claims["sub"]),
        aud,
    })
}

/// The client a logout request names: `client_id`, else the hint's one audience. A
/// `client_id` that is not among the hint's audiences names nobody (`None`), so no
/// redirect follows.
pub fn logout_client(client_id: Option<&str>, hint: Option<&HintClaims>) -> Option<String> {
    match (client_id, hint) {
        (Some(id), Some(hint)) if !hint.aud.is_empty() && !hint.aud.iter().any(|a| a == id) => None,
        (Some(id), _) => Some(id.to_owned()),
        (None, Some(hint)) if hint.aud.len() == 1 => hint.aud.first().cloned(),
        (None, _) => None,
    }
}

/// The post-logout redirect URI when it is one the named client registered (exact
/// match), else `None` (the "signed out" page).
pub fn return_uri<'a>(requested: Option<&'a str>, registered: &[String]) -> Option<&'a str> {
    requested.filter(|uri| registered.iter().any(|r| r == uri))
}

/// Whether the session ends without asking: there is none to end, or the hint names the
/// session's own user.
pub fn ends_without_asking(session_user: Option<&str>, hint: Option<&HintClaims>) -> bool {
    match session_user {
        None => true,
        Some(user) => hint.and_then(|h| h.sub.as_deref()) == Some(user),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hint(sub: Option<&str>, aud: &[&str]) -> HintClaims {
        HintClaims {
            sub: sub.map(str::to_owned),
            aud: aud.iter().map(|a| (*a).to_owned()).collect(),
        }
    }

    #[test]
    fn hints_count_only_for_this_issuer() {
        let iss = "https://auth.example";
        for (claims, expected) in [
            (
                serde_json::json!({"iss": iss, "sub": "u1", "aud": "c1"}),
                Some(hint(Some("u1"), &["c1"])),
            ),
            (
                serde_json::json!({"iss": iss, "sub": "u1", "aud": ["c1", "c2"]}),
                Some(hint(Some("u1"), &["c1", "c2"])),
            ),
            (
                serde_json::json!({"iss": iss, "aud": 7}),
                Some(hint(None, &[])),
            ),
            (
                serde_json::json!({"iss": "https://evil.example", "sub": "u1", "aud": "c1"}),
                None,
            ),
            (
                serde_json::json!({"iss": "https://auth.example/", "sub": "u1"}),
                None,
            ),
            (serde_json::json!({"sub": "u1", "aud": "c1"}), None),
            (serde_json::json!("not an object"), None),
        ] {
            assert_eq!(hint_claims(&claims, iss), expected, "{claims}");
        }
    }

    #[test]
    fn the_named_client_and_where_to_return() {
        let one = hint(Some("u"), &["c1"]);
        let two = hint(Some("u"), &["c1", "c2"]);
        let none = hint(Some("u"), &[]);
        #[rustfmt::skip]
        let table: &[(Option<&str>, Option<&HintClaims>, Option<&str>)] = &[
            // client_id  hint        named client
            (None,        None,       None),
            (Some("c1"),  None,       Some("c1")),
            (None,        Some(&one), Some("c1")),
            (None,        Some(&two), None),
            (Some("c2"),  Some(&two), Some("c2")),
            (Some("c9"),  Some(&one), None),
            (Some("c9"),  Some(&none), Some("c9")),
        ];
        for (client_id, hint, expected) in table {
            assert_eq!(
                logout_client(*client_id, *hint).as_deref(),
                *expected,
                "{client_id:?} {hint:?}"
            );
        }
        let registered = ["https://app/bye".to_owned()];
        assert_eq!(
            return_uri(Some("https://app/bye"), &registered),
            Some("https://app/bye")
        );
        assert_eq!(return_uri(Some("https://app/bye/"), &registered), None);
        assert_eq!(return_uri(Some("https://evil/"), &registered), None);
        assert_eq!(return_uri(None, &registered), None);
    }

    #[test]
    fn only_a_hint_for_the_sessions_user_skips_the_question() {
        let alice = hint(Some("alice"), &["c"]);
        let bob = hint(Some("bob"), &["c"]);
        let anonymous = hint(None, &["c"]);
        #[rustfmt::skip]
        let table: &[(Option<&str>, Option<&HintClaims>, bool)] = &[
            (None,          None,             true),
            (None,          Some(&bob),       true),
            (Some("alice"), Some(&alice),     true),
            (Some("alice"), Some(&bob),       false),
            (Some("alice"), Some(&anonymous), false),
            (Some("alice"), None,             false),
        ];
        for (session, hint, expected) in table {
            assert_eq!(
                ends_without_asking(*session, *hint),
                *expected,
                "{session:?} {hint:?}"
            );
        }
    }
}
