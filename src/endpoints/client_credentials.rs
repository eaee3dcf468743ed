//! The client credentials grant (RFC 6749 §4.4): a confidential client, registered with
//! `--grant client_credentials`, gets an access token for itself. No user, so no grant
//! and no refresh token; the scope stays within the client's allowed scopes.

use super::issued::Issued;
use crate::app::App;
use crate::client_auth::AuthenticatedClient;
use crate::error::{ApiError, OAuthErrorCode};
use crate::oauth::{self, Scope};
use crate::secret;
use crate::store::client_tokens;

/// Issues the token (committed, with its audit entry, before the answer leaves).
pub async fn issue(
    app: &App,
    client: AuthenticatedClient,
    requested: Option<Scope>,
    remote: String,
) -> Result<Issued, ApiError> {
    let scope = oauth::client_scope(client.client.allowed_scopes.as_deref(), requested.as_ref())
        .map_err(|_| {
            ApiError::OAuth(
                OAuthErrorCode::InvalidScope,
                "the requested scope exceeds the client's allowed scopes",
            )
        })?;
    let access = secret::new_token();
    let access_hash = secret::sha256(&access);
    let ttl = app.config.access_ttl_secs;
    let client_id = client.client.client_id;
    let stored_scope = scope.clone();
    app.store
        .write(move |conn| {
            client_tokens::issue(
                conn,
                &access_hash,
                &client_id,
                stored_scope.as_deref(),
                ttl,
                &remote,
            )
        })
        .await?;
    Ok(Issued {
        access,
        refresh: None,
        scope,
        expires_in: ttl,
        id_token: None,
    })
}
