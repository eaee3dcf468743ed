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
    account, authorize, cors, device, device_page, discovery, login_api, logout, metadata, page,
    resource, token, token_management, userinfo,
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
    // An error page shows the Host's brand; the Host is read before the handler takes
    // the request.
    let host = http::host_name(req.headers());
    let response = match route(&app, &path, req, remote).await {
        Ok(response) => response,
        Err(error) => match error.page_error() {
            Some((status, message)) => {
                let brand = brand::resolve_host(&app, host, None).await;
                page::error(status, message, &brand)
            }
            None => error.into_response(),
        },
    };
    tracing::info!(
        %method,
        path = %truncate(&path, 200),
        status = response.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        client = %remote.ip(),
        "request"
    );
    app.metrics.request(
        pattern(&path),
        response.status().as_u16(),
        started.elapsed(),
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
    let options = req.method() == Method::OPTIONS;
    match path {
        "/healthz" if get_or_head => healthz(app).await,
        "/api/auth/verify" if get_or_head => resource::verify(app, req).await,
        "/healthz" | "/api/auth/verify" => Err(ApiError::MethodNotAllowed("GET, HEAD")),
        "/oauth/authorize" if get => authorize::show(app, req, remote).await,
        "/oauth/authorize" if post => authorize::submit(app, req, remote).await,
        "/oauth/authorize" => Err(ApiError::MethodNotAllowed("GET, POST")),
        "/oauth/logout" if get || post => logout::logout(app, req).await,
        "/oauth/logout" => Err(ApiError::MethodNotAllowed("GET, POST")),
        "/account" if get => account::show(app, req).await,
        "/account" if post => account::submit(app, req, remote).await,
        "/account" => Err(ApiError::MethodNotAllowed("GET, POST")),
        "/api/oauth_login" if post => login_api::login(app, req, remote).await,
        "/api/oauth_access_token" | "/oauth/token" if post => token::token(app, req, remote).await,
        "/oauth/revoke" if post => token_management::revoke(app, req, remote).await,
        "/oauth/introspect" if post => token_management::introspect(app, req).await,
        "/oauth/device_authorization" if post => device::authorize(app, req, remote).await,
        "/api/oauth_access_token" | "/oauth/token" | "/oauth/revoke" if options => {
            cors::preflight(app, &req, "POST").await
        }
        "/api/me" if options => cors::preflight(app, &req, "GET").await,
        "/device" if get => device_page::show(app, req, remote).await,
        "/device" if post => device_page::submit(app, req, remote).await,
        "/device" => Err(ApiError::MethodNotAllowed("GET, POST")),
        "/api/oauth_login"
        | "/api/oauth_access_token"
        | "/oauth/token"
        | "/oauth/revoke"
        | "/oauth/introspect"
        | "/oauth/device_authorization" => Err(ApiError::MethodNotAllowed("POST")),
        "/Modern/" | "/Modern" if get => Ok(authorize::modern(app, &req).await),
        "/api/me" if get => {
            let origin = cors::origin(req.headers());
            let answer = resource::me(app, req).await;
            Ok(cors::decorate(app, origin, false, None, answer).await)
        }
        "/oauth/userinfo" if options => cors::preflight(app, &req, "GET, POST").await,
        "/oauth/userinfo" if get || post => {
            let origin = cors::origin(req.headers());
            let answer = userinfo::userinfo(app, req).await;
            Ok(cors::decorate(app, origin, false, None, answer).await)
        }
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

/// The exact paths the table above answers, in its order: metrics label requests by
/// these (or `/assets/*`, or `unmatched`), never by the raw path, so a scan of random
/// paths cannot create new series.
const PATTERNS: &[&str] = &[
    "/healthz",
    "/api/auth/verify",
    "/oauth/authorize",
    "/oauth/logout",
    "/account",
    "/api/oauth_login",
    "/api/oauth_access_token",
    "/oauth/token",
    "/oauth/revoke",
    "/oauth/introspect",
    "/oauth/device_authorization",
    "/device",
    "/Modern/",
    "/Modern",
    "/api/me",
    "/oauth/userinfo",
    "/oauth/jwks",
    "/.well-known/oauth-authorization-server",
    "/.well-known/openid-configuration",
    "/brand/logo",
];

/// The route-table pattern `path` matched, as a metrics label.
fn pattern(path: &str) -> &'static str {
    match PATTERNS.iter().find(|p| **p == path).copied() {
        Some(pattern) => pattern,
        None if path.starts_with("/assets/") => "/assets/*",
        None => "unmatched",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_label_a_request_by_its_route_pattern_only() {
        assert_eq!(pattern("/oauth/token"), "/oauth/token");
        assert_eq!(pattern("/assets/signin.css"), "/assets/*");
        assert_eq!(pattern("/oauth/token/x"), "unmatched");
        assert_eq!(pattern("/wp-login.php?secret=1"), "unmatched");
    }

    /// Every path the route table answers has its own label: a route added to the table
    /// but not to `PATTERNS` would be counted as `unmatched`.
    #[test]
    fn every_routed_path_is_a_metrics_pattern() {
        let source = include_str!("routes.rs");
        let table = &source[..source.find("const PATTERNS").expect("PATTERNS")];
        let routed: Vec<&str> = table
            .split('"')
            .skip(1)
            .step_by(2)
            .filter(|literal| literal.starts_with('/') && *literal != "/assets/")
            .collect();
        assert!(routed.len() > 10, "found {routed:?}");
        for path in routed {
            assert!(
                PATTERNS.contains(&path),
                "{path} is routed but not in PATTERNS"
            );
        }
    }
}
