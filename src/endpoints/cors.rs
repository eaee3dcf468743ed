//! CORS on the endpoints a browser app calls (token, revocation, `/api/me`): preflights,
//! and the headers on actual answers, for origins the rule book (`oauth::cors`) allows.
//! The sign-in page and `/api/oauth_login` are never wrapped here, so they stay
//! same-origin only.

use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::{Request, Response, StatusCode};

use crate::app::App;
use crate::error::ApiError;
use crate::http::{self, Body};
use crate::oauth::cors::{
    origin_scope, OriginScope, ALLOWED_HEADERS, EXPOSED_HEADERS, PREFLIGHT_MAX_AGE,
};
use crate::store;

/// The request's `Origin`, if it sent a readable one.
pub fn origin(headers: &HeaderMap) -> Option<String> {
    headers
        .get(hyper::header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// `OPTIONS` on a CORS endpoint. Without `Origin` it is no preflight: 405 as before. A
/// preflight names no client, so any registered origin is answered; others are refused.
pub async fn preflight(
    app: &App,
    req: &Request<Incoming>,
    methods: &'static str,
) -> Result<Response<Body>, ApiError> {
    let Some(origin) = origin(req.headers()) else {
        return Err(ApiError::MethodNotAllowed(methods));
    };
    if !allowed(app, &origin, origin_scope(Some(&origin), false, None)).await {
        return Err(ApiError::PreflightRefused);
    }
    let mut response = http::text(StatusCode::OK, "");
    allow_origin(&mut response, &origin);
    http::set_header(&mut response, "access-control-allow-methods", methods);
    http::set_header(
        &mut response,
        "access-control-allow-headers",
        ALLOWED_HEADERS,
    );
    http::set_header(&mut response, "access-control-max-age", PREFLIGHT_MAX_AGE);
    Ok(response)
}

/// Adds CORS headers to an answer (success or error, so the page can read the error too)
/// when `origin` is registered for `named_client` (endpoints that name one) or for any
/// client. Always `Vary: Origin`, since the answer depends on it.
pub async fn decorate(
    app: &App,
    origin: Option<String>,
    names_clients: bool,
    named_client: Option<&str>,
    answer: Result<Response<Body>, ApiError>,
) -> Response<Body> {
    let mut response = answer.unwrap_or_else(ApiError::into_response);
    http::set_header(&mut response, "vary", "Origin");
    let scope = origin_scope(origin.as_deref(), names_clients, named_client);
    if let Some(origin) = origin {
        if allowed(app, &origin, scope).await {
            allow_origin(&mut response, &origin);
            http::set_header(
                &mut response,
                "access-control-expose-headers",
                EXPOSED_HEADERS,
            );
        }
    }
    response
}

fn allow_origin(response: &mut Response<Body>, origin: &str) {
    http::set_header(response, "access-control-allow-origin", origin);
    http::set_header(response, "vary", "Origin");
}

/// Whether the store has `origin` registered within `scope`. A storage failure allows
/// nothing (the answer itself reports the failure, if it met one).
async fn allowed(app: &App, origin: &str, scope: OriginScope<'_>) -> bool {
    let client = match scope {
        OriginScope::Nobody => return false,
        OriginScope::Client(client) => Some(client.to_owned()),
        OriginScope::AnyClient => None,
    };
    let origin = origin.to_owned();
    app.store
        .read(move |conn| store::clients::origin_registered(conn, &origin, client.as_deref()))
        .await
        .unwrap_or(false)
}
