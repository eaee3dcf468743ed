//! THE route table: one match on (method, path), the one request log line, and the
//! conversion of handler errors into responses (via `error.rs`). Handlers live in their
//! own modules; nothing here knows OAuth.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

use crate::app::App;
use crate::brand;
use crate::endpoints::params::param_error;
use crate::endpoints::{
    authorize, discovery, login_api, metadata, resource, token, token_management, userinfo,
};
use crate::error::ApiError;
use crate::http::{self, Body};

/// Answers one request and logs one line for it (method, path without query, status,
/// duration, client): never a query string, header or body, which may carry secrets.
pub async fn handle(app: Arc<App>, req: Request<Incoming>, remote: SocketAddr) -> Response<Body> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let remote = if app.config.trust_forwarded_for {
        http::forwarded_client(req.headers(), remote)
    } else {
        remote
    };
    let response = match route(&app, &path, req, remote).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    tracing::info!(
        %method,
        path = %truncate(&path, 200),
        status = response.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        client = %remote.ip(),
        "request"
    );
    response
}

async fn route(
    app: &App,
    path: &str,
    req: Request<Incoming>,
    remote: SocketAddr,
) -> Result<Response<Body>, ApiError> {
    // One table: each path's handlers, then its 405 with the `Allow` header naming the
    // methods above it; anything else is 404.
    let get = req.method() == Method::GET;
    let post = req.method() == Method::POST;
    let get_or_head = get || req.method() == Method::HEAD;
    match path {
        "/healthz" if get_or_head => healthz(app).await,
        "/api/auth/verify" if get_or_head => resource::verify(app, req).await,
        "/healthz" | "/api/auth/verify" => Err(ApiError::MethodNotAllowed("GET, HEAD")),
        "/oauth/authorize" if get => authorize::show(app, req).await,
        "/oauth/authorize" if post => authorize::submit(app, req, remote).await,
        "/oauth/authorize" => Err(ApiError::MethodNotAllowed("GET, POST")),
        "/api/oauth_login" if post => login_api::login(app, req, remote).await,
        "/api/oauth_access_token" | "/oauth/token" if post => token::token(app, req, remote).await,
        "/oauth/revoke" if post => token_management::revoke(app, req, remote).await,
        "/oauth/introspect" if post => token_management::introspect(app, req).await,
        "/api/oauth_login"
        | "/api/oauth_access_token"
        | "/oauth/token"
        | "/oauth/revoke"
        | "/oauth/introspect" => Err(ApiError::MethodNotAllowed("POST")),
        "/Modern/" | "/Modern" if get => Ok(authorize::modern(&req)),
        "/api/me" if get => resource::me(app, req).await,
        "/oauth/userinfo" if get || post => userinfo::userinfo(app, req).await,
        "/oauth/userinfo" => Err(ApiError::MethodNotAllowed("GET, POST")),
        "/oauth/jwks" if get => discovery::jwks(app).await,
        well_known if metadata::is_metadata_path(app, well_known) && get => {
            Ok(metadata::metadata(app))
        }
        "/brand/logo" if get => {
            let query = http::query_params(&req).map_err(param_error)?;
            brand::logo(app, req.headers(), &query).await
        }
        asset if asset.starts_with("/assets/") && get => {
            brand::static_asset(&asset["/assets/".len()..])
        }
        "/Modern/" | "/Modern" | "/api/me" | "/oauth/jwks" | "/brand/logo" => {
            Err(ApiError::MethodNotAllowed("GET"))
        }
        well_known if metadata::is_metadata_path(app, well_known) => {
            Err(ApiError::MethodNotAllowed("GET"))
        }
        asset if asset.starts_with("/assets/") => Err(ApiError::MethodNotAllowed("GET")),
        _ => Err(ApiError::NotFound),
    }
}

/// 200 `ok` when the database can be trusted; otherwise 503 with the reason (file removed
/// or replaced, read-only, writes failing, no answer) and `Retry-After`.
async fn healthz(app: &App) -> Result<Response<Body>, ApiError> {
    match app.store.health().await {
        Ok(()) => Ok(http::text(StatusCode::OK, "ok\n")),
        Err(e) => Err(ApiError::Unhealthy(e)),
    }
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}
