//! The OAuth 2.0 rule book, as plain code without I/O: no hyper, tokio, rusqlite or r2d2
//! (a unit test below greps for them). Redirect URIs and PKCE are checks; the exchange of
//! a code, the refresh of a grant and the revocation of a token are decisions: pure
//! functions over the facts the store read, the request and the time, returning what to
//! do. The endpoint carries a decision out in one store transaction; the store itself
//! decides nothing.

mod attempt;
mod code_exchange;
mod consent;
pub mod cors;
mod device;
mod grants;
mod id_token;
mod introspection;
mod liveness;
mod logout;
mod pkce;
mod prompt;
mod redirect_uri;
mod refresh;
mod retention;
mod revocation;
mod scope;
mod signing_keys;

pub use attempt::{truncate_presented, AttemptReason, AuthorizeRefusal};
pub use code_exchange::{
    decide_exchange, CodeFacts, ExchangeDecision, ExchangeRefusal, ExchangeRequest,
};
pub use consent::{consented_scope, decide_consent, ConsentDecision};
pub use device::{
    awaits_answer, decide_poll, display_user_code, normalize_user_code, remembered_row_usable,
    user_code_from_bytes, DeviceFacts, DeviceStatus, PollDecision, PollRequest,
    USER_CODE_FAILURES_PER_WINDOW, USER_CODE_WINDOW_SECS,
};
pub use grants::{
    client_scope, issues_refresh_token, may_use_grant, scope_allowed, GrantKind, GrantRefusal,
    DEFAULT_GRANTS, DEVICE_CODE_URN,
};
pub use id_token::{has_scope, id_token_claims, userinfo_claims, IdTokenFacts, Subject};
pub use introspection::may_introspect;
pub use liveness::{live, liveness, Liveness, TokenFacts};
pub use logout::{ends_without_asking, hint_claims, logout_client, return_uri, HintClaims};
pub use pkce::{is_valid_pkce_string, pkce_verifies, PkceMethod};
pub use prompt::{
    decide as decide_prompt, needs_touch, parse_max_age, parse_prompt, session_is_live, Decision,
    Prompt, SessionFacts,
};
#[cfg(test)]
pub use redirect_uri::RedirectUriError;
pub use redirect_uri::{select_redirect_uri, RedirectUri};
pub use refresh::{
    decide_refresh, RefreshDecision, RefreshFacts, RefreshRefusal, RefreshRequest, Successor,
    TokenState,
};
pub use retention::{GrantUse, Retention, RETENTION};
pub use revocation::{decide_revocation, RevocationDecision, RevocationFacts};
pub use scope::{narrow_scope, Scope};
pub use signing_keys::{key_phases, new_key_signs_from, KeyPhase, KeyTimes};

use crate::secret::SecretHash;

/// A client id as a request names it, typed so it is not confused with the request's
/// other strings between client authentication and the client lookup.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct ClientId(String);

impl ClientId {
    pub fn new(value: impl Into<String>) -> ClientId {
        ClientId(value.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Reads as the text it holds wherever a `&str` is expected (a client id is no secret).
impl std::ops::Deref for ClientId {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ClientId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for ClientId {
    fn from(value: &str) -> ClientId {
        ClientId::new(value)
    }
}

/// The client presenting a code or refresh token, after client authentication: a
/// confidential client has proved its secret; a public client only named itself.
#[derive(Debug, Clone, Copy)]
pub struct Presenter<'a> {
    pub client_id: &'a str,
    pub public: bool,
    /// The digest of the secret it sent, if any (a public client's may bind a grant).
    pub secret_hash: Option<&'a SecretHash>,
}

impl Presenter<'_> {
    /// Whether this presenter holds the secret a grant was bound to (the bound-secret rule:
    /// a public client that sent a secret at the exchange must repeat it). Constant-time.
    fn proves_bound_secret(&self, bound: Option<&[u8]>) -> bool {
        use subtle::ConstantTimeEq;
        match bound {
            None => true,
            Some(bound) => self
                .secret_hash
                .is_some_and(|presented| bool::from(presented.as_slice().ct_eq(bound))),
        }
    }
}

#[cfg(test)]
mod tests {
    /// The rule book must stay free of I/O: none of its files (its tests' files included)
    /// may name these crates.
    #[test]
    fn the_rule_book_imports_no_io_crates() {
        let mut pending = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/oauth")];
        let mut files = 0;
        while let Some(path) = pending.pop() {
            if path.is_dir() {
                let entries = std::fs::read_dir(&path).expect("src/oauth");
                pending.extend(entries.map(|entry| entry.expect("entry").path()));
                continue;
            }
            files += 1;
            let text = std::fs::read_to_string(&path).expect("read");
            for forbidden in ["hyper", "tokio", "rusqlite", "r2d2"] {
                let used = text
                    .lines()
                    .filter(|l| !l.trim_start().starts_with("//") && !l.contains("forbidden"))
                    .any(|l| l.contains(&format!("{forbidden}::")));
                assert!(!used, "{} uses {forbidden}", path.display());
            }
        }
        assert!(files > 6, "src/oauth was not found");
    }
}
