//! Client authentication at the token, revocation and introspection endpoints
//! (RFC 6749 §2.3.1): HTTP Basic with form-url-encoded halves, or `client_id` +
//! `client_secret` parameters — both accepted for every client, never both at once with
//! different values. Secrets are compared as SHA-256 digests in constant time.

use hyper::header::HeaderMap;

use crate::app::App;
use crate::error::{ApiError, OAuthErrorCode};
use crate::http::{self, Params};
use crate::oauth::ClientId;
use crate::secret::{self, Secret};
use crate::store::{self, clients::Client};

/// A client that has identified itself, and (for confidential clients) proved it.
#[derive(Debug, Clone)]
pub struct AuthenticatedClient {
    pub client: Client,
    /// The secret as presented, if any. For a public client this is its "bound
    /// secret", checked against the grant rather than the client.
    pub presented_secret: Option<Secret>,
}

fn invalid_client(description: &'static str) -> ApiError {
    ApiError::OAuth(OAuthErrorCode::InvalidClient, description)
}

fn invalid_request(description: &'static str) -> ApiError {
    ApiError::OAuth(OAuthErrorCode::InvalidRequest, description)
}

/// The client id and secret the request presents, from Basic or parameters.
pub fn presented_credentials(
    headers: &HeaderMap,
    params: &Params,
) -> Result<(Option<ClientId>, Option<Secret>), ApiError> {
    let basic = http::basic_auth(headers)
        .map_err(|_| invalid_client("malformed HTTP Basic credentials"))?;
    let id_param = params.non_empty("client_id");
    let secret_param = params.non_empty("client_secret");
    match basic {
        Some(basic) => {
            if id_param.is_some_and(|id| id != basic.username) {
                return Err(invalid_request(
                    "client_id differs from the HTTP Basic user",
                ));
            }
            if secret_param.is_some_and(|s| s != basic.password) {
                return Err(invalid_request(
                    "client_secret differs from the HTTP Basic password",
                ));
            }
            let secret = Some(Secret::new(basic.password)).filter(|s| !s.is_empty());
            let id = Some(basic.username).filter(|s| !s.is_empty());
            Ok((id.map(ClientId::new), secret))
        }
        None => Ok((id_param.map(ClientId::new), secret_param.map(Secret::new))),
    }
}

/// The client a request names (Basic user, else `client_id`), before any check: whose
/// registered origins its CORS headers are checked against.
pub fn named_client(headers: &HeaderMap, params: &Params) -> Option<String> {
    match presented_credentials(headers, params) {
        Ok((Some(client_id), _)) => Some(client_id.as_str().to_owned()),
        _ => None,
    }
}

/// Identifies the client; a confidential client must present its secret. A public client
/// may present a secret too (a public client that sends a secret with its first exchange binds the grant to it
/// and must send it again on every refresh).
pub async fn authenticate(
    app: &App,
    headers: &HeaderMap,
    params: &Params,
) -> Result<AuthenticatedClient, ApiError> {
    let (client_id, presented_secret) = presented_credentials(headers, params)?;
    let client_id = require_client_id(client_id)?;
    let client = app.store.find_client(client_id.as_str().to_owned()).await?;
    verify(client, presented_secret)
}

/// [`authenticate`], with `also` read in the same trip to the blocking pool: a request
/// that needs the client and one more row (a device poll) pays one thread hand-off, not
/// two. `also` runs whether or not the client checks out; its result is dropped if not.
pub async fn authenticate_and<T, F>(
    app: &App,
    headers: &HeaderMap,
    params: &Params,
    also: F,
) -> Result<(AuthenticatedClient, T), ApiError>
where
    T: Send + 'static,
    F: FnOnce(&store::Conn<'_>) -> Result<T, store::StoreError> + Send + 'static,
{
    let (client_id, presented_secret) = presented_credentials(headers, params)?;
    let client_id = require_client_id(client_id)?;
    let (client, found) = app
        .store
        .read(move |conn| Ok((store::clients::find(conn, client_id.as_str())?, also(conn)?)))
        .await?;
    Ok((verify(client, presented_secret)?, found))
}

/// The client id, which every authenticated call must name.
pub fn require_client_id(client_id: Option<ClientId>) -> Result<ClientId, ApiError> {
    client_id.ok_or(invalid_client(
        "client authentication is required (client_id)",
    ))
}

/// Checks the presented secret against the stored client (found by the caller, possibly
/// together with other data in one database round trip). Unknown client and wrong secret
/// get the same answer.
pub fn verify(
    client: Option<Client>,
    presented_secret: Option<Secret>,
) -> Result<AuthenticatedClient, ApiError> {
    let client = client.ok_or(invalid_client("unknown client or wrong secret"))?;
    if !secret_checks_out(client.secret_hash.as_deref(), presented_secret.as_ref()) {
        return Err(invalid_client("unknown client or wrong secret"));
    }
    Ok(AuthenticatedClient {
        client,
        presented_secret,
    })
}

/// Whether `presented` proves a client whose stored secret digest is `stored` (`None`:
/// a public client, which needs none).
pub fn secret_checks_out(stored: Option<&[u8]>, presented: Option<&Secret>) -> bool {
    match stored {
        None => true,
        Some(stored) => presented.is_some_and(|p| secret::matches(p.expose(), stored)),
    }
}

/// Only confidential clients qualify (introspection).
pub fn require_confidential(
    authenticated: AuthenticatedClient,
) -> Result<AuthenticatedClient, ApiError> {
    if authenticated.client.public {
        return Err(invalid_client(
            "only confidential clients may introspect tokens",
        ));
    }
    Ok(authenticated)
}
