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

/// Answers one request and logs one line for it (method, path without query, status,
/// duration, client): never a query string, header or body, which may carry secrets.
pub async fn handle(app: Arc<App>, req: Request<Incoming>, remote: SocketAddr) -> Response<Body> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
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

async fn route(app: Arc<App>, req: Request<Incoming>, remote: SocketAddr) -> Result<Response<Body>, ApiError> {
    let method = req.method().clone();
    match (method, req.uri().path()) {
        (Method::GET | Method::HEAD, "/healthz") => healthz(&app).await,
        (_, "/healthz") => Err(ApiError::MethodNotAllowed("GET, HEAD")),
        _ => {
            let _ = remote;
            Err(ApiError::NotFound)
        }
    }
}

/// 200 `ok` when the database answers a query, 503 otherwise.
async fn healthz(app: &App) -> Result<Response<Body>, ApiError> {
    let answered = app
        .store
        .call(|conn| Ok(conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?))
        .await;
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
