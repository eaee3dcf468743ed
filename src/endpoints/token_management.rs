//! What clients do with tokens after issue: revoke them (RFC 7009, `POST /oauth/revoke`)
//! and introspect them (RFC 7662, `POST /oauth/introspect`).

use std::net::SocketAddr;

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde::Serialize;

use super::params::read_params;
use crate::app::App;
use crate::client_auth;
use crate::error::{ApiError, OAuthErrorCode};
use crate::http::{self, Body};
use crate::oauth;
use crate::secret;
use crate::store::client_tokens::{self, ClientAccessInfo};
use crate::store::grants::{self, AccessInfo, Origin};

/// `POST /oauth/revoke`: 200 whether or not the token existed (RFC 7009 §2.2), so the
/// answer reveals nothing. What the token undoes is `oauth::decide_revocation`'s call.
pub async fn revoke(
    app: &App,
    req: Request<Incoming>,
    remote: SocketAddr,
) -> Result<Response<Body>, ApiError> {
    let origin = super::cors::origin(req.headers());
    let (parts, params) = read_params(req).await?;
    let named = client_auth::named_client(&parts.headers, &params);
    let answer = revoke_token(app, &parts.headers, &params, remote).await;
    Ok(super::cors::decorate(app, origin, true, named.as_deref(), answer).await)
}

/// The revocation proper, once its parameters are read.
async fn revoke_token(
    app: &App,
    headers: &hyper::HeaderMap,
    params: &crate::http::Params,
    remote: SocketAddr,
) -> Result<Response<Body>, ApiError> {
    let client = client_auth::authenticate(app, headers, params).await?;
    let token = params.non_empty("token").ok_or(ApiError::OAuth(
        OAuthErrorCode::InvalidRequest,
        "token is required",
    ))?;
    let token_hash = secret::sha256(token);
    let client_id = client.client.client_id;
    let remote = remote.ip().to_string();
    // The facts are read and the decision carried out in one write transaction, so no
    // refresh or exchange can slip in between.
    app.store
        .write(move |conn| {
            let mut facts = grants::find_revocation(conn, &token_hash)?;
            if matches!(facts, oauth::RevocationFacts::Unknown) {
                // Not a user's token: perhaps a client-credentials token.
                facts = client_tokens::find_revocation(conn, &token_hash)?;
            }
            let decision = oauth::decide_revocation(&facts, &client_id);
            grants::revoke_token(
                conn,
                &token_hash,
                decision,
                facts.user_email().unwrap_or_default(),
                &client_id,
                Origin {
                    remote_addr: &remote,
                },
            )?;
            Ok(())
        })
        .await?;
    let mut response = http::json_bytes(StatusCode::OK, b"{}".to_vec());
    http::no_store(&mut response);
    Ok(response)
}

#[derive(Serialize)]
struct Active<'a> {
    active: bool,
    client_id: &'a str,
    sub: &'a str,
    username: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    iat: i64,
    token_type: &'static str,
}

/// `POST /oauth/introspect`: for a confidential client, what one of its own tokens (any
/// token, for a client registered with `--introspect-any`) stands for, or exactly
/// `{"active":false}`.
pub async fn introspect(app: &App, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let (parts, params) = read_params(req).await?;
    let (client_id, presented_secret) =
        client_auth::presented_credentials(&parts.headers, &params)?;
    let client_id = client_auth::require_client_id(client_id)?;
    let token = params.non_empty("token").map(secret::sha256);
    let hint_refresh = params.get("token_type_hint") == Some("refresh_token");
    // The hot path of resource servers that validate every call: one read for the client
    // and the token.
    let (client, found) = app
        .store
        .find_introspected(client_id.as_str().to_owned(), token, hint_refresh)
        .await?;
    let found = super::resource::live_token(found);
    let client = client_auth::require_confidential(client_auth::verify(client, presented_secret)?)?;
    if token.is_none() {
        return Err(ApiError::OAuth(
            OAuthErrorCode::InvalidRequest,
            "token is required",
        ));
    }
    let visible = found.as_ref().filter(|info| {
        let token_client = match info {
            Ok(user_token) => user_token.client_id.as_str(),
            Err(client_token) => client_token.client_id.as_str(),
        };
        oauth::may_introspect(
            &client.client.client_id,
            client.client.introspect_any,
            token_client,
        )
    });
    let body = match visible {
        Some(Ok(info)) => serde_json::to_vec(&active(info)).unwrap_or_default(),
        Some(Err(info)) => serde_json::to_vec(&active_client(info)).unwrap_or_default(),
        None => br#"{"active":false}"#.to_vec(),
    };
    let mut response = http::json_bytes(StatusCode::OK, body);
    http::no_store(&mut response);
    Ok(response)
}

fn active(info: &AccessInfo) -> Active<'_> {
    Active {
        active: true,
        client_id: info.client_id.as_str(),
        sub: &info.user_id,
        username: &info.email,
        scope: info.scope.as_ref().map(oauth::Scope::as_str),
        exp: (info.expires_at > 0).then_some(info.expires_at),
        iat: info.issued_at,
        token_type: "bearer",
    }
}

/// A client-credentials token: the client and no `sub` or `username` (there is no user).
#[derive(Serialize)]
struct ActiveClient<'a> {
    active: bool,
    client_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
    exp: i64,
    iat: i64,
    token_type: &'static str,
}

fn active_client(info: &ClientAccessInfo) -> ActiveClient<'_> {
    ActiveClient {
        active: true,
        client_id: &info.client_id,
        scope: info.scope.as_ref().map(oauth::Scope::as_str),
        exp: info.expires_at,
        iat: info.issued_at,
        token_type: "bearer",
    }
}
