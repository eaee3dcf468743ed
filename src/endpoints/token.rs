//! The token endpoint (at `/api/oauth_access_token` and `/oauth/token`):
//! `authorization_code` with PKCE and the bound-secret rule (see `client_auth`), and
//! `refresh_token` with rotation for public clients. The rules are the rule book's
//! (`oauth`); this module parses the request, reads the facts, asks for the decision and
//! carries it out in one store transaction. Every answer is `no-store`; every issued
//! token is committed before the answer leaves.

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde::Serialize;

use super::id_token::{id_token, Issued};
use super::params::read_params;
use super::token_request::{GrantType, GrantTypeReq};
use crate::client_auth::{self, AuthenticatedClient};
use crate::error::{ApiError, OAuthErrorCode};
use crate::http::{self, Body};
use std::sync::Arc;

use crate::app::App;
use crate::oauth::{
    self, ExchangeDecision, ExchangeRefusal, GrantRefusal, RedirectUri, RefreshDecision,
    RefreshRefusal, Scope,
};
use crate::secret::{self, Secret};
use crate::store;
use crate::store::grants::{NewTokens, Origin};

/// The success answer: exactly these members (`scope` only when one was granted).
#[derive(Serialize)]
struct TokenAnswer<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: i64,
    /// Absent for client credentials (RFC 6749 §4.4.3) and grants without `refresh_token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
    /// OpenID Connect: only when the scope holds `openid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token: Option<&'a str>,
}

fn oauth_error(code: OAuthErrorCode, description: &'static str) -> ApiError {
    ApiError::OAuth(code, description)
}

pub async fn token(
    app: &App,
    req: Request<Incoming>,
    remote: std::net::SocketAddr,
) -> Result<Response<Body>, ApiError> {
    let origin = super::cors::origin(req.headers());
    let (parts, params) = read_params(req).await?;
    let named = client_auth::named_client(&parts.headers, &params);
    let answer = grant(app, &parts.headers, &params, remote).await;
    Ok(super::cors::decorate(app, origin, true, named.as_deref(), answer).await)
}

/// The token request proper, once its parameters are read.
async fn grant(
    app: &App,
    headers: &hyper::HeaderMap,
    params: &crate::http::Params,
    remote: std::net::SocketAddr,
) -> Result<Response<Body>, ApiError> {
    let grant = GrantType::parse(params)?;
    if grant == GrantType::DeviceCode {
        if let Some(pending) = super::device::pending_from_memory(app, headers, params) {
            return Err(pending);
        }
    }
    let early = |reason| super::attempts::refused_early(app, headers, params, grant.kind(), reason);
    // A device poll reads its device code in the same trip as the client.
    let answers_before = app.devices.answers();
    let polled = (grant == GrantType::DeviceCode)
        .then(|| params.non_empty("device_code").map(secret::sha256))
        .flatten();
    let authenticated = match polled {
        None => (client_auth::authenticate(app, headers, params).await).map(|c| (c, None)),
        Some(hash) => {
            client_auth::authenticate_and(app, headers, params, move |conn| {
                store::devices::find(conn, &hash)
            })
            .await
        }
    };
    let (client, device) =
        authenticated.inspect_err(|_| early(oauth::AttemptReason::ClientAuthFailed))?;
    oauth::may_use_grant(
        &client.client.grant_types,
        client.client.public,
        grant.kind(),
    )
    .inspect_err(|refusal| early(oauth::AttemptReason::of_grant_refusal(*refusal)))
    .map_err(grant_refusal)?;
    let remote = remote.ip().to_string();
    match GrantTypeReq::parse(grant, params)? {
        GrantTypeReq::AuthorizationCode {
            code,
            redirect_uri,
            code_verifier,
        } => exchange_code(app, client, &code, redirect_uri, code_verifier, remote).await,
        GrantTypeReq::RefreshToken {
            refresh_token,
            scope,
        } => refresh(app, client, &refresh_token, scope, remote).await,
        GrantTypeReq::ClientCredentials { scope } => {
            let issued = super::client_credentials::issue(app, client, scope, remote).await?;
            Ok(answer_issued(app, grant.kind(), issued))
        }
        GrantTypeReq::DeviceCode { device_code } => {
            let read = super::device::PollRead {
                facts: device,
                answers_before,
            };
            let issued = super::device::poll(app, client, &device_code, read, remote).await?;
            Ok(answer_issued(app, grant.kind(), issued))
        }
    }
}

/// The answer for tokens a grant type's own module issued, counted in the metrics.
fn answer_issued(
    app: &App,
    grant: oauth::GrantKind,
    issued: super::issued::Issued,
) -> Response<Body> {
    app.metrics.issued(grant.name());
    token_answer(
        &issued.access,
        issued.expires_in,
        issued.refresh.as_deref(),
        issued.scope.as_deref(),
        issued.id_token.as_deref(),
    )
}

/// `unauthorized_client`: the client did not register this grant type, or may not use it.
fn grant_refusal(refusal: GrantRefusal) -> ApiError {
    match refusal {
        GrantRefusal::NotRegistered => oauth_error(
            OAuthErrorCode::UnauthorizedClient,
            "the client is not registered for this grant type",
        ),
        GrantRefusal::NeedsConfidentialClient => oauth_error(
            OAuthErrorCode::UnauthorizedClient,
            "client_credentials needs a confidential client",
        ),
    }
}

async fn exchange_code(
    app: &App,
    client: AuthenticatedClient,
    code: &Secret,
    redirect_uri: Option<RedirectUri>,
    verifier: Option<String>,
    remote: String,
) -> Result<Response<Body>, ApiError> {
    let code_hash = code.digest();
    let (access, refresh) = (secret::new_token(), secret::new_token());
    let tokens = new_tokens(app, &access, &refresh);
    let with_refresh = oauth::issues_refresh_token(&client.client.grant_types);
    let ttl = app.config.access_ttl_secs;
    let client_id = client.client.client_id.clone();
    let client_id_for_log = client_id.clone();
    let oidc_client = client.client.clone();
    let presented_secret = client.presented_secret.as_ref().map(Secret::digest);
    // Read the facts, decide, and carry the decision out, all in one write transaction:
    // of concurrent exchanges of one code, exactly one sees it unused.
    let outcome = app
        .store
        .write(move |conn| {
            let (decision, facts) = super::grant_jobs::exchange(
                conn,
                &super::grant_jobs::Exchange {
                    code_hash: &code_hash,
                    request: oauth::ExchangeRequest {
                        presenter: presenter(&client, presented_secret.as_ref()),
                        redirect_uri: redirect_uri.as_ref(),
                        code_verifier: verifier.as_deref(),
                    },
                    tokens: &tokens,
                    with_refresh,
                    origin: Origin {
                        remote_addr: &remote,
                    },
                },
            )?;
            let attempt = super::attempts::exchange(
                conn,
                &client_id_for_log,
                &code_hash,
                &decision,
                facts.as_ref(),
                redirect_uri.as_ref(),
            )?;
            store::client_log::record(conn, &attempt)?;
            Ok((decision, facts.map(|code| (code.grant_id, code.scope))))
        })
        .await?;
    app.metrics.exchange(&outcome.0);
    match outcome {
        (ExchangeDecision::Issue { .. }, Some((grant_id, scope))) => {
            let issued = Issued {
                client: &oidc_client,
                grant_id,
                code_hash: Some(code_hash),
                scope: scope.as_ref().map(Scope::as_str),
                access_token: &access,
            };
            grant_answer(app, issued, ttl, with_refresh.then_some(refresh.as_str())).await
        }
        (ExchangeDecision::Issue { .. }, None) => Err(unknown_grant()),
        (ExchangeDecision::RevokeReplayed { .. }, _) => {
            tracing::warn!(
                client_id = client_id.as_str(),
                "authorization code replayed; its tokens were revoked"
            );
            Err(unknown_grant())
        }
        (ExchangeDecision::Refuse(refusal), _) => Err(exchange_refusal(refusal)),
    }
}

async fn refresh(
    app: &App,
    client: AuthenticatedClient,
    presented: &Secret,
    requested_scope: Option<Scope>,
    remote: String,
) -> Result<Response<Body>, ApiError> {
    let refresh_hash = presented.digest();
    let (access, successor) = (secret::new_token(), secret::new_token());
    let tokens = new_tokens(app, &access, &successor);
    let (ttl, grace_secs) = (app.config.access_ttl_secs, app.config.refresh_grace_secs);
    let client_id = client.client.client_id.clone();
    let oidc_client = client.client.clone();
    let presented_secret = client.presented_secret.as_ref().map(Secret::digest);
    let rotations = Arc::clone(&app.rotations);
    // As for codes: facts, decision and its writes in one transaction, so racing copies of
    // one refresh token are decided one after the other, each seeing the last one's writes.
    let (decision, grant_id) = app
        .store
        .write(move |conn| {
            let (decision, facts) = super::grant_jobs::refresh(
                conn,
                &super::grant_jobs::Refresh {
                    refresh_hash: &refresh_hash,
                    presenter: presenter(&client, presented_secret.as_ref()),
                    requested_scope: requested_scope.as_ref(),
                    grace_secs,
                    rotations: &rotations,
                    tokens: &tokens,
                    origin: Origin {
                        remote_addr: &remote,
                    },
                },
            )?;
            store::client_log::record(
                conn,
                &super::attempts::refresh(
                    conn,
                    &client.client.client_id,
                    &refresh_hash,
                    &decision,
                    facts.as_ref(),
                )?,
            )?;
            Ok((decision, facts.map(|token| token.grant_id)))
        })
        .await?;
    app.metrics.refresh(&decision);
    let (scope, refresh_out) = match decision {
        RefreshDecision::Keep { scope, .. } => (scope, presented.expose()),
        RefreshDecision::Rotate { scope, .. } | RefreshDecision::RotateAgain { scope, .. } => {
            (scope, successor.as_str())
        }
        RefreshDecision::RevokeReused { .. } => {
            tracing::warn!(
                client_id = client_id.as_str(),
                "rotated-out refresh token reused; the grant was revoked"
            );
            return Err(unknown_grant());
        }
        RefreshDecision::Refuse(refusal) => return Err(refresh_refusal(refusal)),
    };
    let Some(grant_id) = grant_id else {
        return Ok(token_answer(
            &access,
            ttl,
            Some(refresh_out),
            scope.as_deref(),
            None,
        ));
    };
    // OpenID Connect Core 12.2: a refresh answers a new id_token (same sub, aud and
    // auth_time; no nonce) while the answer's scope holds `openid`.
    let issued = Issued {
        client: &oidc_client,
        grant_id,
        code_hash: None,
        scope: scope.as_deref(),
        access_token: &access,
    };
    grant_answer(app, issued, ttl, Some(refresh_out)).await
}

/// The answer for tokens issued under a user's grant (exchange or refresh), with an
/// id_token when their scope holds `openid`.
async fn grant_answer(
    app: &App,
    issued: Issued<'_>,
    expires_in: i64,
    refresh: Option<&str>,
) -> Result<Response<Body>, ApiError> {
    let (access, scope) = (issued.access_token, issued.scope);
    let id_token = id_token(app, issued).await?;
    Ok(token_answer(
        access,
        expires_in,
        refresh,
        scope,
        id_token.as_deref(),
    ))
}

/// The authenticated client as the rule book sees it.
fn presenter<'a>(
    client: &'a AuthenticatedClient,
    secret_hash: Option<&'a secret::SecretHash>,
) -> oauth::Presenter<'a> {
    oauth::Presenter {
        client_id: &client.client.client_id,
        public: client.client.public,
        secret_hash,
    }
}

fn new_tokens(app: &App, access: &str, refresh: &str) -> NewTokens {
    NewTokens {
        access_hash: secret::sha256(access),
        access_ttl_secs: app.config.access_ttl_secs,
        refresh_hash: secret::sha256(refresh),
        refresh_ttl_secs: app.config.refresh_ttl_secs,
    }
}

/// One answer for unknown, revoked, used and reused: the client learns nothing more.
fn unknown_grant() -> ApiError {
    oauth_error(
        OAuthErrorCode::InvalidGrant,
        "unknown, revoked or already used grant",
    )
}

fn exchange_refusal(refusal: ExchangeRefusal) -> ApiError {
    match refusal {
        ExchangeRefusal::Unknown => unknown_grant(),
        ExchangeRefusal::Expired => {
            oauth_error(OAuthErrorCode::InvalidGrant, "the grant has expired")
        }
        ExchangeRefusal::WrongClient => oauth_error(
            OAuthErrorCode::InvalidGrant,
            "the code was issued to another client",
        ),
        ExchangeRefusal::RedirectMismatch => oauth_error(
            OAuthErrorCode::InvalidGrant,
            "redirect_uri does not match the authorization",
        ),
        ExchangeRefusal::VerifierMissing => {
            oauth_error(OAuthErrorCode::InvalidRequest, "code_verifier is required")
        }
        ExchangeRefusal::VerifierMismatch => oauth_error(
            OAuthErrorCode::InvalidGrant,
            "code_verifier does not match the code_challenge",
        ),
        ExchangeRefusal::VerifierUnexpected => oauth_error(
            OAuthErrorCode::InvalidGrant,
            "code_verifier sent but no code_challenge was given",
        ),
    }
}

fn refresh_refusal(refusal: RefreshRefusal) -> ApiError {
    match refusal {
        RefreshRefusal::Unknown => unknown_grant(),
        RefreshRefusal::Expired => {
            oauth_error(OAuthErrorCode::InvalidGrant, "the grant has expired")
        }
        RefreshRefusal::WrongClient => oauth_error(
            OAuthErrorCode::InvalidGrant,
            "the refresh token was issued to another client",
        ),
        RefreshRefusal::BoundSecretRequired => oauth_error(
            OAuthErrorCode::InvalidClient,
            "this grant requires the client_secret sent at the exchange",
        ),
        RefreshRefusal::ScopeExceeded => oauth_error(
            OAuthErrorCode::InvalidScope,
            "the requested scope exceeds the granted scope",
        ),
    }
}

/// The success answer (`no-store`), shared by every grant type.
fn token_answer(
    access: &str,
    expires_in: i64,
    refresh: Option<&str>,
    scope: Option<&str>,
    id_token: Option<&str>,
) -> Response<Body> {
    let answer = TokenAnswer {
        access_token: access,
        token_type: "bearer",
        expires_in,
        refresh_token: refresh,
        scope,
        id_token,
    };
    let mut response = http::json_bytes(
        StatusCode::OK,
        serde_json::to_vec(&answer).unwrap_or_default(),
    );
    http::no_store(&mut response);
    response
}
