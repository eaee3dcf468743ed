//! The errors the HTTP layer can answer with, and the one place that turns them into
//! status codes and bodies. The match in [`ApiError::into_response`] is exhaustive (no
//! `_ =>`), so a new variant cannot compile until someone picks its status.
//!
//! There are four families because the protocols have four: token-endpoint JSON errors
//! (RFC 6749 §5.2), the seed's `/api/oauth_login` answers, bearer-token errors (RFC 6750),
//! and HTML error pages for the browser. Messages are constant strings; causes are logged.

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Response, StatusCode};

use crate::http;
use crate::store::StoreError;

/// Seconds a client is asked to wait after a storage failure (a full disk, a replaced
/// file): long enough not to hammer a failing disk, short enough to recover quickly.
const STORAGE_RETRY_AFTER: &str = "5";

/// RFC 6749 §5.2 error codes, named as the RFC spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnsupportedGrantType,
    InvalidScope,
}

impl OAuthErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            OAuthErrorCode::InvalidRequest => "invalid_request",
            OAuthErrorCode::InvalidClient => "invalid_client",
            OAuthErrorCode::InvalidGrant => "invalid_grant",
            OAuthErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            OAuthErrorCode::InvalidScope => "invalid_scope",
        }
    }
}

/// Why `/api/oauth_login` failed; each has its status and the seed's JSON shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginFailure {
    /// Malformed JSON, a missing field, `response_type` not `code`, unknown client or
    /// unregistered redirect URI.
    BadRequest(&'static str),
    /// Wrong email or password (one message for both: no user enumeration).
    WrongCredentials,
    Disabled,
}

/// RFC 6750 §3 answers of a protected resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerError {
    /// No token was sent: 401 with a bare challenge.
    Missing,
    /// Unknown, expired or revoked token: 401 with `error="invalid_token"`.
    InvalidToken,
    /// Not a member of the selected organization: 403.
    Forbidden,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed(&'static str),
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("request body not sent in time")]
    RequestTimeout,
    #[error("too many requests waiting for password hashing")]
    Busy,
    #[error("token endpoint error {0:?}: {1}")]
    OAuth(OAuthErrorCode, &'static str),
    #[error("login failed: {0:?}")]
    Login(LoginFailure),
    #[error("bearer error: {0:?}")]
    Bearer(BearerError),
    /// `/api/oauth_login` during a lockout (the sign-in page re-renders itself instead).
    #[error("throttled for {retry_after_secs}s")]
    Throttled { retry_after_secs: u64 },
    #[error("bad authorization request: {0}")]
    AuthorizePage(&'static str),
    #[error("storage failure: {0}")]
    Store(#[from] StoreError),
}

impl ApiError {
    /// The response for this error. Storage failures are logged here (with their cause)
    /// and answered with a stable 503 that reveals nothing.
    pub fn into_response(self) -> Response<Full<Bytes>> {
        match self {
            ApiError::NotFound => http::text(StatusCode::NOT_FOUND, "not found\n"),
            ApiError::MethodNotAllowed(allow) => {
                let mut response =
                    http::text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
                http::set_header(&mut response, "allow", allow);
                response
            }
            ApiError::PayloadTooLarge => http::text(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large (limit 64 KiB)\n",
            ),
            ApiError::RequestTimeout => http::text(
                StatusCode::REQUEST_TIMEOUT,
                "request body not sent in time\n",
            ),
            ApiError::Busy => {
                let mut response =
                    http::text(StatusCode::SERVICE_UNAVAILABLE, "busy; try again shortly\n");
                http::set_header(&mut response, "retry-after", "1");
                response
            }
            ApiError::OAuth(code, description) => {
                let status = match code {
                    OAuthErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
                    OAuthErrorCode::InvalidRequest
                    | OAuthErrorCode::InvalidGrant
                    | OAuthErrorCode::UnsupportedGrantType
                    | OAuthErrorCode::InvalidScope => StatusCode::BAD_REQUEST,
                };
                let body =
                    serde_json::json!({"error": code.as_str(), "error_description": description});
                let mut response = http::json(status, &body);
                http::no_store(&mut response);
                if code == OAuthErrorCode::InvalidClient {
                    http::set_header(&mut response, "www-authenticate", "Basic realm=\"oauthd\"");
                }
                response
            }
            ApiError::Login(failure) => {
                let (status, message) = match failure {
                    LoginFailure::BadRequest(message) => (StatusCode::BAD_REQUEST, message),
                    LoginFailure::WrongCredentials => {
                        (StatusCode::UNAUTHORIZED, "Invalid email or password.")
                    }
                    LoginFailure::Disabled => (StatusCode::FORBIDDEN, "This account is disabled."),
                };
                let mut response = http::json(
                    status,
                    &serde_json::json!({"success": false, "message": message}),
                );
                http::no_store(&mut response);
                response
            }
            ApiError::Bearer(error) => {
                let (status, challenge, body) = match error {
                    BearerError::Missing => (
                        StatusCode::UNAUTHORIZED,
                        "Bearer realm=\"oauthd\"",
                        serde_json::json!({"error": "invalid_request", "error_description": "missing bearer token"}),
                    ),
                    BearerError::InvalidToken => (
                        StatusCode::UNAUTHORIZED,
                        "Bearer realm=\"oauthd\", error=\"invalid_token\"",
                        serde_json::json!({"error": "invalid_token", "error_description": "unknown, expired or revoked token"}),
                    ),
                    BearerError::Forbidden => (
                        StatusCode::FORBIDDEN,
                        "Bearer realm=\"oauthd\", error=\"insufficient_scope\"",
                        serde_json::json!({"error": "forbidden"}),
                    ),
                };
                let mut response = http::json(status, &body);
                http::set_header(&mut response, "www-authenticate", challenge);
                response
            }
            ApiError::Throttled { retry_after_secs } => {
                let body = serde_json::json!({
                    "success": false,
                    "message": "Too many failed sign-in attempts. Try again later.",
                });
                let mut response = http::json(StatusCode::TOO_MANY_REQUESTS, &body);
                http::set_header(&mut response, "retry-after", &retry_after_secs.to_string());
                response
            }
            ApiError::AuthorizePage(message) => {
                crate::assets::error_page(StatusCode::BAD_REQUEST, message)
            }
            ApiError::Store(e) => {
                // A full disk fails every request the same way: log it once per interval.
                crate::log_limit::storage_error("storage failure", &e);
                let mut response = http::text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "service temporarily unavailable\n",
                );
                http::set_header(&mut response, "retry-after", STORAGE_RETRY_AFTER);
                response
            }
        }
    }
}
