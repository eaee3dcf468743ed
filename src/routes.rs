//! THE route table: one match on (method, path), the one request log line, and the
//! conversion of handler errors into responses (via `error.rs`). Handlers live in their
//! own modules; nothing here knows OAuth.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

use crate::error::ApiError;
use crate::http::{self, Body};
use crate::server::App;
use crate::{authorize, brand, login_api, metadata, resource, token, token_management};

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
    let response = match route(app, req, remote).await {
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
    app: Arc<App>,
    req: Request<Incoming>,
    remote: SocketAddr,
) -> Result<Response<Body>, ApiError> {
    let app = app.as_ref();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    match (&method, path.as_str()) {
        (&Method::GET | &Method::HEAD, "/healthz") => healthz(app).await,
        (&Method::GET, "/oauth/authorize") => authorize::show(app, req).await,
        (&Method::POST, "/oauth/authorize") => authorize::submit(app, req, remote).await,
        (&Method::GET, "/Modern/" | "/Modern") => Ok(authorize::modern(&req)),
        (&Method::POST, "/api/oauth_login") => login_api::login(app, req, remote).await,
        (&Method::POST, "/api/oauth_access_token" | "/oauth/token") => {
            token::token(app, req, remote).await
        }
        (&Method::POST, "/oauth/revoke") => token_management::revoke(app, req, remote).await,
        (&Method::POST, "/oauth/introspect") => token_management::introspect(app, req).await,
        (&Method::GET, "/api/me") => resource::me(app, req).await,
        (&Method::GET | &Method::HEAD, "/api/auth/verify") => resource::verify(app, req).await,
        (&Method::GET, "/.well-known/oauth-authorization-server") => Ok(metadata::metadata(app)),
        (&Method::GET, "/brand/logo") => {
            let query = http::query_params(&req).unwrap_or_default();
            brand::logo(app, req.headers(), &query).await
        }
        (&Method::GET, asset) if asset.starts_with("/assets/") => {
            brand::static_asset(&asset["/assets/".len()..])
        }
        (_, path) => match allowed_methods(path) {
            Some(allow) => Err(ApiError::MethodNotAllowed(allow)),
            None => Err(ApiError::NotFound),
        },
    }
}

/// The `Allow` header for a known path requested with the wrong method.
fn allowed_methods(path: &str) -> Option<&'static str> {
    match path {
        "/healthz" | "/api/auth/verify" => Some("GET, HEAD"),
        "/oauth/authorize" => Some("GET, POST"),
        "/Modern/"
        | "/Modern"
        | "/api/me"
        | "/.well-known/oauth-authorization-server"
        | "/brand/logo" => Some("GET"),
        "/api/oauth_login"
        | "/api/oauth_access_token"
        | "/oauth/token"
        | "/oauth/revoke"
        | "/oauth/introspect" => Some("POST"),
        _ if path.starts_with("/assets/") => Some("GET"),
        _ => None,
    }
}

/// 200 `ok` when the database answers a query, 503 otherwise.
async fn healthz(app: &App) -> Result<Response<Body>, ApiError> {
    let answered = app.store.read(|conn| crate::store::ping(conn)).await;
    Ok(match answered {
        Ok(_) => http::text(StatusCode::OK, "ok\n"),
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
            http::text(StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n")
        }
    })
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}
