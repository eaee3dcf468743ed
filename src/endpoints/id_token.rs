//! The id_token of a token answer (OpenID Connect Core 3.1.3.3, and 12.2 on refresh):
//! only when the answer's scope holds `openid`, signed with the client's algorithm.
//! The claim rules are the rule book's (`oauth::id_token_claims`).

use crate::app::App;
use crate::error::ApiError;
use crate::jose;
use crate::oauth::{self, IdTokenFacts};
use crate::secret::SecretHash;
use crate::store::{self, clients::Client, grants};

/// What one token answer is about.
pub struct Issued<'a> {
    pub client: &'a Client,
    pub grant_id: i64,
    /// The exchanged code, whose nonce the id_token carries; `None` on refresh.
    pub code_hash: Option<SecretHash>,
    pub scope: Option<&'a str>,
    pub access_token: &'a str,
}

/// The signed id_token, or `None` without `openid` (or when the grant vanished since).
pub async fn id_token(app: &App, issued: Issued<'_>) -> Result<Option<String>, ApiError> {
    if !oauth::has_scope(issued.scope, "openid") {
        return Ok(None);
    }
    let (grant_id, code_hash) = (issued.grant_id, issued.code_hash);
    let facts = app
        .store
        .read(move |conn| grants::id_token_facts(conn, grant_id, code_hash.as_ref()))
        .await?;
    let Some(grants::GrantSubject {
        subject,
        auth_time,
        nonce,
    }) = facts
    else {
        return Ok(None);
    };
    let signer = app
        .signing_keys
        .signer(&app.store, issued.client.id_token_alg)
        .await?;
    let at_hash = jose::half_hash(signer.alg(), issued.access_token);
    let facts = IdTokenFacts {
        issuer: &app.config.issuer,
        client_id: &issued.client.client_id,
        scope: issued.scope,
        now: store::now(),
        auth_time,
        nonce: nonce.as_deref(),
        at_hash: &at_hash,
    };
    let Some(claims) = oauth::id_token_claims(&facts, &subject) else {
        return Ok(None);
    };
    let signed = signer
        .sign(&serde_json::Value::Object(claims))
        .map_err(crate::oidc_keys::KeyError::from)?;
    Ok(Some(signed))
}
