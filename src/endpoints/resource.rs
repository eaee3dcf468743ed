//! Protected calls of oauthd itself: `GET /api/me` and the reverse-proxy
//! forward-auth check `GET /api/auth/verify`. Both take `Authorization: Bearer …` and an
//! optional organization (`org` parameter or cookie, by id or name).

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde::Serialize;

use super::params::param_error;
use crate::app::App;
use crate::error::{ApiError, BearerError};
use crate::http::{self, Body};
use crate::oauth;
use crate::oauth::TokenFacts;
use crate::secret;
use crate::store::{
    self, client_tokens::ClientAccessInfo, grants::AccessInfo, orgs::Membership, TokenRow,
};

/// Who a valid token acts as, and in which organization.
struct Caller {
    token: AccessInfo,
    orgs: Vec<Membership>,
    org: Option<Membership>,
}

#[derive(Serialize)]
struct Me<'a> {
    id: &'a str,
    email: &'a str,
    name: Option<&'a str>,
    orgs: &'a [Membership],
    org: Option<&'a Membership>,
}

/// A client-credentials token: the client acting as itself, with no user.
#[derive(Serialize)]
struct ClientMe<'a> {
    client_id: &'a str,
    client_name: &'a str,
    scope: Option<&'a str>,
}

/// Who a bearer token speaks for: a user (through a client), or a client as itself.
enum Bearer {
    User(Caller),
    Client(ClientAccessInfo),
}

/// `GET /api/me`.
pub async fn me(app: &App, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let caller = match authenticate(app, &req).await? {
        Bearer::User(caller) => caller,
        Bearer::Client(token) => {
            let me = ClientMe {
                client_id: &token.client_id,
                client_name: &token.client_name,
                scope: token.scope.as_ref().map(oauth::Scope::as_str),
            };
            let mut response =
                http::json_bytes(StatusCode::OK, serde_json::to_vec(&me).unwrap_or_default());
            http::set_header(&mut response, "cache-control", "no-store");
            return Ok(response);
        }
    };
    let me = Me {
        id: &caller.token.user_id,
        email: &caller.token.email,
        name: caller.token.name.as_deref(),
        orgs: &caller.orgs,
        org: caller.org.as_ref(),
    };
    let mut response =
        http::json_bytes(StatusCode::OK, serde_json::to_vec(&me).unwrap_or_default());
    http::set_header(&mut response, "cache-control", "no-store");
    Ok(response)
}

/// `GET /api/auth/verify`: 200 with identity headers for the proxy to forward.
pub async fn verify(app: &App, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let caller = match authenticate(app, &req).await? {
        Bearer::User(caller) => caller,
        Bearer::Client(token) => {
            let mut response = http::text(StatusCode::OK, "ok\n");
            http::set_header(&mut response, "x-auth-client-id", &token.client_id);
            http::set_header(&mut response, "cache-control", "no-store");
            return Ok(response);
        }
    };
    let mut response = http::text(StatusCode::OK, "ok\n");
    http::set_header(&mut response, "x-auth-user-id", &caller.token.user_id);
    http::set_header(&mut response, "x-auth-email", &caller.token.email);
    if let Some(org) = &caller.org {
        http::set_header(&mut response, "x-auth-org", &org.name);
        http::set_header(&mut response, "x-auth-role", &org.role);
    }
    http::set_header(&mut response, "cache-control", "no-store");
    Ok(response)
}

/// The organization the request selects (`org` parameter, else `org` cookie). A malformed
/// query or cookie is a 400: dropping it would answer as if no organization had been
/// selected, which a proxy would take as success (issue 8, item 4).
fn selected_org(req: &Request<Incoming>) -> Result<Option<String>, ApiError> {
    let query = http::query_params(req).map_err(param_error)?;
    if let Some(org) = query.non_empty("org") {
        return Ok(Some(org.to_owned()));
    }
    let cookie = http::cookie_strict(req.headers(), "org").map_err(param_error)?;
    Ok(cookie.filter(|v| !v.is_empty()).map(str::to_owned))
}

/// The token a stored row stands for, if it is live now: a user's (`Ok`) or a client's
/// own (`Err`).
pub(super) fn live_token<U>(row: TokenRow<(U, TokenFacts)>) -> Option<Result<U, ClientAccessInfo>> {
    let now = store::now();
    match row {
        TokenRow::User(user) => oauth::live(Some(user), now).map(Ok),
        TokenRow::Client(client) => oauth::live(Some(client), now).map(Err),
        TokenRow::None => None,
    }
}

/// Validates the bearer token and resolves the selected organization. A selected
/// organization the user is not a member of (or that does not exist) is 403; a client
/// acting as itself is a member of none.
async fn authenticate(app: &App, req: &Request<Incoming>) -> Result<Bearer, ApiError> {
    let token = http::bearer_token(req.headers()).ok_or(ApiError::Bearer(BearerError::Missing))?;
    let token_hash = secret::sha256(token);
    let selected = selected_org(req)?;
    let found = live_token(app.store.find_bearer(token_hash).await?);
    let (token, orgs) = match found.ok_or(ApiError::Bearer(BearerError::InvalidToken))? {
        Ok(user) => user,
        Err(client) if selected.is_none() => return Ok(Bearer::Client(client)),
        Err(_) => return Err(ApiError::Bearer(BearerError::Forbidden)),
    };
    let org = match selected {
        None => None,
        Some(wanted) => Some(
            orgs.iter()
                .find(|m| m.id == wanted || m.name.eq_ignore_ascii_case(&wanted))
                .cloned()
                .ok_or(ApiError::Bearer(BearerError::Forbidden))?,
        ),
    };
    Ok(Bearer::User(Caller { token, orgs, org }))
}
