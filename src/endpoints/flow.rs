//! What the browser flow sends back: the redirects that answer the client (a code or an
//! error, with `iss`), and the authorization request as hidden form fields for the
//! sign-in and consent forms.

use hyper::Response;

use crate::app::App;
use crate::http::{self, Body};
use crate::oauth::RedirectUri;
use crate::signin::AuthorizationRequest;

/// The redirect that hands the client its code (and `state`), with `iss` (RFC 9207).
pub fn code_redirect(app: &App, request: &AuthorizationRequest, code: &str) -> Response<Body> {
    let mut answer = vec![("code", code)];
    if let Some(state) = &request.state {
        answer.push(("state", state));
    }
    answer.push(("iss", &app.config.issuer));
    http::redirect(&request.redirect_uri.with_query(&answer))
}

/// The redirect that reports an error to a trusted redirect URI (RFC 6749 §4.1.2.1),
/// with `iss` (RFC 9207).
pub fn error_redirect(
    app: &App,
    redirect_uri: &RedirectUri,
    error: &str,
    description: &str,
    state: Option<&str>,
) -> Response<Body> {
    let mut answer = vec![("error", error), ("error_description", description)];
    if let Some(state) = state {
        answer.push(("state", state));
    }
    answer.push(("iss", &app.config.issuer));
    http::redirect(&redirect_uri.with_query(&answer))
}

/// The authorization request as hidden form fields (with the CSRF token), so the
/// sign-in and consent forms post it back whole.
pub fn request_fields<'a>(
    request: &'a AuthorizationRequest,
    csrf_token: &'a str,
) -> Vec<(&'a str, &'a str)> {
    let mut hidden = vec![
        ("response_type", "code"),
        ("client_id", request.client.client_id.as_str()),
        ("redirect_uri", request.redirect_uri.as_str()),
        ("csrf_token", csrf_token),
    ];
    for (name, value) in [
        ("state", &request.state),
        ("scope", &request.scope),
        ("nonce", &request.nonce),
    ] {
        if let Some(value) = value {
            hidden.push((name, value));
        }
    }
    if let Some((challenge, method)) = &request.pkce {
        hidden.push(("code_challenge", challenge));
        hidden.push(("code_challenge_method", method.as_str()));
    }
    hidden
}
