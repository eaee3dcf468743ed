//! RFC 8414 authorization server metadata, built from `--issuer`.

use hyper::{Response, StatusCode};

use crate::app::App;
use crate::http::{self, Body};
use crate::oauth::GrantKind;

/// `GET /.well-known/oauth-authorization-server`.
pub fn metadata(app: &App) -> Response<Body> {
    let issuer = &app.config.issuer;
    let body = serde_json::json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/oauth/authorize"),
        "token_endpoint": format!("{issuer}/oauth/token"),
        "revocation_endpoint": format!("{issuer}/oauth/revoke"),
        "introspection_endpoint": format!("{issuer}/oauth/introspect"),
        "device_authorization_endpoint": format!("{issuer}/oauth/device_authorization"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": GrantKind::ALL.map(GrantKind::grant_type),
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256", "plain"],
    });
    let mut response = http::json(StatusCode::OK, &body);
    http::set_header(&mut response, "cache-control", "public, max-age=300");
    response
}
