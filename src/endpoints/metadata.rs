//! Server metadata: one document for RFC 8414 (`/.well-known/oauth-authorization-server`)
//! and OpenID Connect Discovery (`/.well-known/openid-configuration`), built from
//! `--issuer`. It lists only what is implemented (no `none` algorithm, no request objects).
//! When the issuer has a path (`https://id.example/tenant-a`), the document is also served
//! where each specification derives it from that path: RFC 8414 §3.1 inserts the well-known
//! name before the path, OpenID Connect Discovery §4 appends it.

use hyper::{Response, StatusCode};

use crate::app::App;
use crate::http::{self, Body};
use crate::jose::Alg;
use crate::oauth::GrantKind;

const RFC8414_NAME: &str = "/.well-known/oauth-authorization-server";
const OIDC_NAME: &str = "/.well-known/openid-configuration";

/// Whether `path` is one of the metadata locations of this server's issuer.
pub fn is_metadata_path(app: &App, path: &str) -> bool {
    if path == RFC8414_NAME || path == OIDC_NAME {
        return true;
    }
    let Some(issuer_path) = issuer_path(&app.config.issuer) else {
        return false;
    };
    path.strip_prefix(RFC8414_NAME) == Some(issuer_path.as_str())
        || path.strip_suffix(OIDC_NAME) == Some(issuer_path.as_str())
}

/// `GET` of any metadata location.
pub fn metadata(app: &App) -> Response<Body> {
    let issuer = &app.config.issuer;
    let algs: Vec<&str> = Alg::ALL.iter().map(|alg| alg.as_str()).collect();
    let body = serde_json::json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/oauth/authorize"),
        "token_endpoint": format!("{issuer}/oauth/token"),
        "revocation_endpoint": format!("{issuer}/oauth/revoke"),
        "introspection_endpoint": format!("{issuer}/oauth/introspect"),
        "device_authorization_endpoint": format!("{issuer}/oauth/device_authorization"),
        "userinfo_endpoint": format!("{issuer}/oauth/userinfo"),
        "jwks_uri": format!("{issuer}/oauth/jwks"),
        "end_session_endpoint": format!("{issuer}/oauth/logout"),
        "prompt_values_supported": ["none", "login", "consent"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": GrantKind::ALL.map(GrantKind::grant_type),
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256", "plain"],
        "scopes_supported": ["openid", "email", "profile", "groups"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algs,
        "claims_supported": [
            "iss", "sub", "aud", "azp", "exp", "iat", "auth_time", "nonce", "at_hash",
            "email", "email_verified", "name", "groups"
        ],
        "authorization_response_iss_parameter_supported": true,
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
    });
    let mut response = http::json(StatusCode::OK, &body);
    http::set_header(&mut response, "cache-control", "public, max-age=300");
    response
}

/// The issuer's path without a trailing slash, when it has one (`/tenant-a`).
fn issuer_path(issuer: &str) -> Option<String> {
    let url = url::Url::parse(issuer).ok()?;
    let path = url.path().trim_end_matches('/');
    (!path.is_empty()).then(|| path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_paths() {
        let table = [
            ("https://id.example", None),
            ("https://id.example/", None),
            ("https://id.example/tenant-a", Some("/tenant-a")),
            ("https://id.example/a/b/", Some("/a/b")),
        ];
        for (issuer, path) in table {
            assert_eq!(issuer_path(issuer).as_deref(), path, "{issuer}");
        }
    }
}
