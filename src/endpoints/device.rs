//! The Device Authorization Grant (RFC 8628) on the client's side:
//! `POST /oauth/device_authorization` hands out a device code and a user code, and the
//! token endpoint's `urn:ietf:params:oauth:grant-type:device_code` polls. A poll that
//! finds the authorization still pending only reads: its time is remembered in memory
//! (`device_memory`), never written. The user's side is `device_page`.

use std::net::SocketAddr;

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde::Serialize;

use super::id_token;
use super::issued::Issued;
use super::params::read_params;
use crate::app::App;
use crate::client_auth::{self, AuthenticatedClient};
use crate::device_memory::Remembered;
use crate::error::{ApiError, OAuthErrorCode};
use crate::http::{self, Body};
use crate::oauth::{self, GrantKind, PollDecision, PollRequest, Scope};
use crate::secret::{self, fill_random, Secret, SecretHash};
use crate::store::{self, devices, grants::NewTokens, grants::Origin};

/// User codes tried per request: a collision with a live code is already ~1 in 10^7.
const USER_CODE_CANDIDATES: usize = 3;

/// The answer of RFC 8628 §3.2.
#[derive(Serialize)]
struct DeviceAnswer<'a> {
    device_code: &'a str,
    user_code: &'a str,
    verification_uri: &'a str,
    verification_uri_complete: &'a str,
    expires_in: i64,
    interval: i64,
}

fn oauth_error(code: OAuthErrorCode, description: &'static str) -> ApiError {
    ApiError::OAuth(code, description)
}

/// `POST /oauth/device_authorization`: for a client registered with `--grant
/// device_code` (public clients too).
pub async fn authorize(
    app: &App,
    req: Request<Incoming>,
    _remote: SocketAddr,
) -> Result<Response<Body>, ApiError> {
    let (parts, params) = read_params(req).await?;
    let client = client_auth::authenticate(app, &parts.headers, &params).await?;
    oauth::may_use_grant(
        &client.client.grant_types,
        client.client.public,
        GrantKind::DeviceCode,
    )
    .map_err(|_| {
        oauth_error(
            OAuthErrorCode::UnauthorizedClient,
            "the client is not registered for the device_code grant",
        )
    })?;
    let requested = params.non_empty("scope").map(Scope::new);
    let scope = oauth::client_scope(client.client.allowed_scopes.as_deref(), requested.as_ref())
        .map_err(|_| {
            oauth_error(
                OAuthErrorCode::InvalidScope,
                "the requested scope exceeds the client's allowed scopes",
            )
        })?;
    let device_code = secret::new_token();
    let user_codes: Vec<String> = (0..USER_CODE_CANDIDATES)
        .filter_map(|_| new_user_code())
        .collect();
    let user_code_hashes: Vec<SecretHash> = user_codes.iter().map(|c| secret::sha256(c)).collect();
    let new = devices::NewDevice {
        device_code_hash: secret::sha256(&device_code),
        client_id: &client.client.client_id,
        scope: scope.as_deref(),
        ttl_secs: app.config.device_code_ttl_secs,
        interval_secs: app.config.device_interval_secs,
    };
    let (device_code_hash, client_id, ttl_secs, interval_secs) = (
        new.device_code_hash,
        new.client_id.to_owned(),
        new.ttl_secs,
        new.interval_secs,
    );
    let stored = app
        .store
        .write(move |conn| {
            devices::create(
                conn,
                &devices::NewDevice {
                    device_code_hash,
                    client_id: &client_id,
                    scope: scope.as_deref(),
                    ttl_secs,
                    interval_secs,
                },
                &user_code_hashes,
            )
        })
        .await?;
    let user_code = stored
        .and_then(|index| user_codes.get(index))
        .ok_or(ApiError::Busy)?;
    let user_code = oauth::display_user_code(user_code);
    let verification_uri = format!("{}/device", app.config.issuer);
    let complete = format!("{verification_uri}?user_code={user_code}");
    let answer = DeviceAnswer {
        device_code: &device_code,
        user_code: &user_code,
        verification_uri: &verification_uri,
        verification_uri_complete: &complete,
        expires_in: ttl_secs,
        interval: interval_secs,
    };
    let mut response = http::json_bytes(
        StatusCode::OK,
        serde_json::to_vec(&answer).unwrap_or_default(),
    );
    http::no_store(&mut response);
    Ok(response)
}

/// A fresh user code from the OS random source (32 bytes leave ample room for the few
/// that rejection sampling skips).
fn new_user_code() -> Option<String> {
    let mut bytes = [0u8; 32];
    fill_random(&mut bytes);
    oauth::user_code_from_bytes(&bytes)
}

/// A device code's row as the token endpoint read it together with the client.
pub struct PollRead {
    /// `None`: no such code (or already redeemed).
    pub facts: Option<oauth::DeviceFacts>,
    /// The memory's answer count from before the read (`DeviceMemory::answers`).
    pub answers_before: u64,
}

/// A poll of a code still waiting for its user, answered from memory without a trip to
/// the database: when a recent poll's read of this code is remembered (pending, fresh,
/// no user answered since) and the request presents the same client with, for a
/// confidential one, its secret. `None`: the poll must be decided the full way.
pub fn pending_from_memory(
    app: &App,
    headers: &hyper::HeaderMap,
    params: &http::Params,
) -> Option<ApiError> {
    let (Some(client_id), presented) = client_auth::presented_credentials(headers, params).ok()?
    else {
        return None;
    };
    let code_hash = secret::sha256(params.non_empty("device_code")?);
    let last = app.devices.last_poll(&code_hash)?;
    let row = last.row?;
    let usable = oauth::remembered_row_usable(&row.facts, row.age_ms())
        && row.facts.client_id == client_id.as_str()
        && client_auth::secret_checks_out(row.client_secret_hash.as_deref(), presented.as_ref());
    if !usable {
        return None;
    }
    let request = PollRequest {
        client_id: client_id.as_str(),
        since_last_poll_ms: Some(last.since_ms),
        interval_secs: Some(last.interval_secs),
    };
    still_pending(
        app,
        code_hash,
        oauth::decide_poll(Some(&row.facts), &request, store::now()),
        None,
    )
}

/// The answer to a poll decided pending or `slow_down` (`None` for other decisions),
/// remembering the poll and, when it read the row, that row.
fn still_pending(
    app: &App,
    code_hash: SecretHash,
    decision: PollDecision,
    read: Option<(Remembered, u64)>,
) -> Option<ApiError> {
    match decision {
        PollDecision::Pending { interval_secs } => {
            app.devices.record_poll(code_hash, interval_secs, read);
            Some(oauth_error(
                OAuthErrorCode::AuthorizationPending,
                "the user has not answered yet",
            ))
        }
        PollDecision::SlowDown { interval_secs } => {
            app.devices.record_poll(code_hash, interval_secs, read);
            Some(oauth_error(
                OAuthErrorCode::SlowDown,
                "polling too often: wait 5 seconds longer between polls",
            ))
        }
        _ => None,
    }
}

/// The token endpoint's device grant: one poll, decided by the rule book over the row
/// read together with the client.
pub async fn poll(
    app: &App,
    client: AuthenticatedClient,
    device_code: &Secret,
    read: PollRead,
    remote: String,
) -> Result<Issued, ApiError> {
    let code_hash = device_code.digest();
    let last = app.devices.last_poll(&code_hash);
    let request = PollRequest {
        client_id: &client.client.client_id,
        since_last_poll_ms: last.as_ref().map(|l| l.since_ms),
        interval_secs: last.as_ref().map(|l| l.interval_secs),
    };
    let decision = oauth::decide_poll(read.facts.as_ref(), &request, store::now());
    match decision {
        PollDecision::Pending { .. } | PollDecision::SlowDown { .. } => {
            let row = read.facts.map(|facts| {
                let secret_hash = client.client.secret_hash.clone();
                (Remembered::new(facts, secret_hash), read.answers_before)
            });
            Err(still_pending(app, code_hash, decision, row).unwrap_or_else(unknown_device_code))
        }
        PollDecision::Issue => issue(app, &client, code_hash, remote).await,
        PollDecision::Denied => {
            app.devices.forget(&code_hash);
            app.store
                .write(move |conn| devices::discard(conn, &code_hash))
                .await?;
            Err(oauth_error(
                OAuthErrorCode::AccessDenied,
                "the user denied the request",
            ))
        }
        PollDecision::Expired => {
            app.devices.forget(&code_hash);
            Err(oauth_error(
                OAuthErrorCode::ExpiredToken,
                "the device code has expired",
            ))
        }
        PollDecision::Unknown => Err(unknown_device_code()),
    }
}

/// Redeems an approved device code, once: of racing polls, one gets the tokens.
async fn issue(
    app: &App,
    client: &AuthenticatedClient,
    code_hash: SecretHash,
    remote: String,
) -> Result<Issued, ApiError> {
    let (access, refresh) = (secret::new_token(), secret::new_token());
    let tokens = NewTokens {
        access_hash: secret::sha256(&access),
        access_ttl_secs: app.config.access_ttl_secs,
        refresh_hash: secret::sha256(&refresh),
        refresh_ttl_secs: app.config.refresh_ttl_secs,
    };
    let with_refresh = oauth::issues_refresh_token(&client.client.grant_types);
    let redeemed = app
        .store
        .write(move |conn| {
            devices::redeem(
                conn,
                &code_hash,
                &tokens,
                with_refresh,
                Origin {
                    remote_addr: &remote,
                },
            )
        })
        .await?;
    app.devices.forget(&code_hash);
    let redeemed = redeemed.ok_or_else(unknown_device_code)?;
    // With `openid`, an id_token too (its auth_time: when the user approved).
    let id_token = id_token::id_token(
        app,
        id_token::Issued {
            client: &client.client,
            grant_id: redeemed.grant_id,
            code_hash: None,
            scope: redeemed.scope.as_deref(),
            access_token: &access,
        },
    )
    .await?;
    Ok(Issued {
        access,
        refresh: with_refresh.then_some(refresh),
        scope: redeemed.scope,
        expires_in: app.config.access_ttl_secs,
        id_token,
    })
}

/// Unknown, another client's, or already redeemed: the device learns nothing more.
fn unknown_device_code() -> ApiError {
    oauth_error(
        OAuthErrorCode::InvalidGrant,
        "unknown, expired or already used device code",
    )
}
