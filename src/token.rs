//! The token endpoint (SPEC §4.3, at `/api/oauth_access_token` and `/oauth/token`):
//! `authorization_code` with PKCE and the seed's bound-secret rule, and `refresh_token`
//! with rotation for public clients. Every answer is `no-store`; every issued token is
//! committed before the answer leaves.

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde::Serialize;

use crate::client_auth::{self, AuthenticatedClient};
use crate::error::{ApiError, OAuthErrorCode};
use crate::http::{self, Body, ParamError, Params};
use crate::oauth::{self, PkceMethod, RedirectUri};
use crate::secret;
use crate::server::App;
use crate::store::grants::{
    self, CodeGrant, NewTokens, Origin, RefreshGrant, RefreshOutcome, Refusal,
};

/// The success answer: exactly these members (`scope` only when one was granted).
#[derive(Serialize)]
struct TokenAnswer<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: i64,
    refresh_token: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
}

fn oauth_error(code: OAuthErrorCode, description: &'static str) -> ApiError {
    ApiError::OAuth(code, description)
}

/// Maps a parameter parsing failure to the token endpoint's error family.
pub fn param_error(error: ParamError) -> ApiError {
    match error {
        ParamError::TooLarge => ApiError::PayloadTooLarge,
        ParamError::TimedOut => ApiError::RequestTimeout,
        ParamError::Duplicate
        | ParamError::BadEncoding
        | ParamError::ValueTooLong
        | ParamError::BadJson
        | ParamError::NotAString
        | ParamError::TooManyParams
        | ParamError::UnsupportedContentType
        | ParamError::Unreadable => {
            oauth_error(OAuthErrorCode::InvalidRequest, error.description())
        }
    }
}

/// Reads the parameters from the query string and the body (form or JSON) together; a
/// name in both counts as sent twice.
pub async fn read_params(
    req: Request<Incoming>,
) -> Result<(hyper::http::request::Parts, Params), ApiError> {
    let mut params = http::query_params(&req).map_err(param_error)?;
    let (parts, body) = http::read_body(req).await.map_err(param_error)?;
    params
        .merge(http::body_params(&parts.headers, &body).map_err(param_error)?)
        .map_err(param_error)?;
    Ok((parts, params))
}

pub async fn token(
    app: &App,
    req: Request<Incoming>,
    remote: std::net::SocketAddr,
) -> Result<Response<Body>, ApiError> {
    let (parts, params) = read_params(req).await?;
    let grant_type = params
        .non_empty("grant_type")
        .ok_or(oauth_error(
            OAuthErrorCode::InvalidRequest,
            "grant_type is required",
        ))?
        .to_owned();
    if !matches!(grant_type.as_str(), "authorization_code" | "refresh_token") {
        return Err(oauth_error(
            OAuthErrorCode::UnsupportedGrantType,
            "grant_type must be authorization_code or refresh_token",
        ));
    }
    let client = client_auth::authenticate(app, &parts.headers, &params).await?;
    let remote = remote.ip().to_string();
    match grant_type.as_str() {
        "authorization_code" => exchange_code(app, client, &params, remote).await,
        _ => refresh(app, client, &params, remote).await,
    }
}

async fn exchange_code(
    app: &App,
    client: AuthenticatedClient,
    params: &Params,
    remote: String,
) -> Result<Response<Body>, ApiError> {
    let code = params.non_empty("code").ok_or(oauth_error(
        OAuthErrorCode::InvalidRequest,
        "code is required",
    ))?;
    let code_hash = secret::sha256(code);
    let redirect_uri = match params.non_empty("redirect_uri") {
        Some(raw) => Some(RedirectUri::parse(raw).map_err(|_| {
            oauth_error(
                OAuthErrorCode::InvalidGrant,
                "redirect_uri does not match the authorization",
            )
        })?),
        None => None,
    };
    let verifier = params.non_empty("code_verifier").map(str::to_owned);
    let (access, refresh) = (secret::new_token(), secret::new_token());
    let tokens = new_tokens(app, &access, &refresh);
    let (ttl, client_id) = (app.config.access_ttl_secs, client.client.client_id.clone());
    let outcome = app
        .store
        .write(move |conn| {
            grants::exchange_code(
                conn,
                &code_hash,
                &tokens,
                Origin {
                    remote_addr: &remote,
                },
                |grant| check_exchange(grant, &client, redirect_uri.as_ref(), verifier.as_deref()),
            )
        })
        .await?;
    match outcome {
        Ok(grant) => Ok(token_answer(&access, ttl, &refresh, grant.scope.as_deref())),
        Err(refusal) => Err(refusal_error(refusal, &client_id)),
    }
}

/// The protocol checks of an exchange, run inside its transaction. Returns the secret
/// digest to bind to the grant (seed rule: a public client that sends a secret here must
/// send it again on every refresh).
fn check_exchange(
    grant: &CodeGrant,
    client: &AuthenticatedClient,
    redirect_uri: Option<&RedirectUri>,
    verifier: Option<&str>,
) -> Result<Option<secret::SecretHash>, ApiError> {
    if grant.client_id != client.client.client_id {
        return Err(oauth_error(
            OAuthErrorCode::InvalidGrant,
            "the code was issued to another client",
        ));
    }
    if let Some(given) = redirect_uri {
        let matches = RedirectUri::parse(&grant.redirect_uri).is_ok_and(|used| used.matches(given));
        if !matches {
            return Err(oauth_error(
                OAuthErrorCode::InvalidGrant,
                "redirect_uri does not match the authorization",
            ));
        }
    }
    match (&grant.code_challenge, verifier) {
        (Some(challenge), Some(verifier)) => {
            let method = PkceMethod::parse(grant.code_challenge_method.as_deref())
                .unwrap_or(PkceMethod::Plain);
            if !oauth::pkce_verifies(method, challenge, verifier) {
                return Err(oauth_error(
                    OAuthErrorCode::InvalidGrant,
                    "code_verifier does not match the code_challenge",
                ));
            }
        }
        (Some(_), None) => {
            return Err(oauth_error(
                OAuthErrorCode::InvalidRequest,
                "code_verifier is required",
            ))
        }
        // RFC 9700 §2.1.1: a verifier for a code issued without a challenge is a downgrade attempt.
        (None, Some(_)) => {
            return Err(oauth_error(
                OAuthErrorCode::InvalidGrant,
                "code_verifier sent but no code_challenge was given",
            ))
        }
        (None, None) => {}
    }
    let bind = match (&client.client.public, &client.presented_secret) {
        (true, Some(secret)) => Some(secret::sha256(secret)),
        _ => None,
    };
    Ok(bind)
}

async fn refresh(
    app: &App,
    client: AuthenticatedClient,
    params: &Params,
    remote: String,
) -> Result<Response<Body>, ApiError> {
    let presented = params
        .non_empty("refresh_token")
        .ok_or(oauth_error(
            OAuthErrorCode::InvalidRequest,
            "refresh_token is required",
        ))?
        .to_owned();
    let requested_scope = params.non_empty("scope").map(str::to_owned);
    let refresh_hash = secret::sha256(&presented);
    let (access, successor) = (secret::new_token(), secret::new_token());
    let tokens = new_tokens(app, &access, &successor);
    let (ttl, grace, client_id) = (
        app.config.access_ttl_secs,
        app.config.refresh_grace_secs,
        client.client.client_id.clone(),
    );
    let outcome = app
        .store
        .write(move |conn| {
            grants::refresh(
                conn,
                &refresh_hash,
                &tokens,
                grace,
                Origin {
                    remote_addr: &remote,
                },
                |grant| check_refresh(grant, &client, requested_scope.as_deref()),
            )
        })
        .await?;
    match outcome {
        Ok((grant, RefreshOutcome::Kept)) => Ok(token_answer(
            &access,
            ttl,
            &presented,
            grant.scope.as_deref(),
        )),
        Ok((grant, RefreshOutcome::Rotated)) => Ok(token_answer(
            &access,
            ttl,
            &successor,
            grant.scope.as_deref(),
        )),
        Err(refusal) => Err(refusal_error(refusal, &client_id)),
    }
}

/// The client must be the one the token was issued to and, when the grant has a bound
/// secret, present that same secret. A requested scope may not exceed the granted one.
fn check_refresh(
    grant: &RefreshGrant,
    client: &AuthenticatedClient,
    requested_scope: Option<&str>,
) -> Result<(), ApiError> {
    if grant.client_id != client.client.client_id {
        return Err(oauth_error(
            OAuthErrorCode::InvalidGrant,
            "the refresh token was issued to another client",
        ));
    }
    if let Some(bound) = &grant.bound_secret_hash {
        let proves = client
            .presented_secret
            .as_deref()
            .is_some_and(|s| secret::matches(s, bound));
        if !proves {
            return Err(oauth_error(
                OAuthErrorCode::InvalidClient,
                "this grant requires the client_secret sent at the exchange",
            ));
        }
    }
    if let Some(requested) = requested_scope {
        let granted: Vec<&str> = grant
            .scope
            .as_deref()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        if !requested.split_whitespace().all(|s| granted.contains(&s)) {
            return Err(oauth_error(
                OAuthErrorCode::InvalidScope,
                "the requested scope exceeds the granted scope",
            ));
        }
    }
    Ok(())
}

fn new_tokens(app: &App, access: &str, refresh: &str) -> NewTokens {
    NewTokens {
        access_hash: secret::sha256(access),
        access_ttl_secs: app.config.access_ttl_secs,
        refresh_hash: secret::sha256(refresh),
        refresh_ttl_secs: app.config.refresh_ttl_secs,
    }
}

fn refusal_error(refusal: Refusal<ApiError>, client_id: &str) -> ApiError {
    match refusal {
        Refusal::Unknown => oauth_error(
            OAuthErrorCode::InvalidGrant,
            "unknown, revoked or already used grant",
        ),
        Refusal::Expired => oauth_error(OAuthErrorCode::InvalidGrant, "the grant has expired"),
        Refusal::Replayed => {
            tracing::warn!(
                client_id,
                "authorization code replayed; its tokens were revoked"
            );
            oauth_error(
                OAuthErrorCode::InvalidGrant,
                "unknown, revoked or already used grant",
            )
        }
        Refusal::TheftDetected => {
            tracing::warn!(
                client_id,
                "rotated-out refresh token reused; the grant was revoked"
            );
            oauth_error(
                OAuthErrorCode::InvalidGrant,
                "unknown, revoked or already used grant",
            )
        }
        Refusal::Rejected(error) => error,
    }
}

fn token_answer(
    access: &str,
    expires_in: i64,
    refresh: &str,
    scope: Option<&str>,
) -> Response<Body> {
    let answer = TokenAnswer {
        access_token: access,
        token_type: "bearer",
        expires_in,
        refresh_token: refresh,
        scope,
    };
    let mut response = http::json_bytes(
        StatusCode::OK,
        serde_json::to_vec(&answer).unwrap_or_default(),
    );
    http::no_store(&mut response);
    response
}
