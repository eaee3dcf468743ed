//! The errors the HTTP layer can answer with, and the one place that turns them into
//! status codes and bodies. The match in [`ApiError::into_response`] is exhaustive (no
//! `_ =>`), so a new variant cannot compile until someone picks its status.
//!
//! There are four families because the protocols have four: token-endpoint JSON errors
//! (RFC 6749 §5.2), the GroveStreams-compatible `/api/oauth_login` answers, bearer-token errors (RFC 6750),
//! and HTML error pages for the browser. Messages are constant strings; causes are logged.

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Response, StatusCode};

use crate::http::{self, ParamError};
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
    UnauthorizedClient,
    /// RFC 8628 §3.5: the device's user has not answered yet.
    AuthorizationPending,
    /// RFC 8628 §3.5: polled too early; the interval grew by 5 s.
    SlowDown,
    AccessDenied,
    ExpiredToken,
}

impl OAuthErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            OAuthErrorCode::InvalidRequest => "invalid_request",
            OAuthErrorCode::InvalidClient => "invalid_client",
            OAuthErrorCode::InvalidGrant => "invalid_grant",
            OAuthErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            OAuthErrorCode::InvalidScope => "invalid_scope",
            OAuthErrorCode::UnauthorizedClient => "unauthorized_client",
            OAuthErrorCode::AuthorizationPending => "authorization_pending",
            OAuthErrorCode::SlowDown => "slow_down",
            OAuthErrorCode::AccessDenied => "access_denied",
            OAuthErrorCode::ExpiredToken => "expired_token",
        }
    }
}

/// Why a sign-in was refused, shared by the sign-in page (which shows the page again with
/// the message) and `/api/oauth_login` (which answers JSON); both answer the same status,
/// chosen in [`SignInFailure::status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInFailure {
    /// A missing field or an unacceptable request (malformed JSON, `response_type` not
    /// `code`, unknown client, unregistered redirect URI).
    BadRequest(&'static str),
    /// The page's form failed its CSRF or same-origin check.
    StaleForm,
    /// Wrong email or password (one message for both: no user enumeration).
    WrongCredentials,
    Disabled,
    /// The account or address is locked out for this long.
    Throttled {
        retry_after_secs: u64,
    },
}

impl SignInFailure {
    pub fn status(self) -> StatusCode {
        match self {
            SignInFailure::BadRequest(_) => StatusCode::BAD_REQUEST,
            SignInFailure::StaleForm | SignInFailure::Disabled => StatusCode::FORBIDDEN,
            SignInFailure::WrongCredentials => StatusCode::UNAUTHORIZED,
            SignInFailure::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// The sentence shown to the person signing in (the page words a lockout as advice).
    pub fn message(self, on_page: bool) -> &'static str {
        match self {
            SignInFailure::BadRequest(message) => message,
            SignInFailure::StaleForm => "Your sign-in form expired. Please sign in again.",
            SignInFailure::WrongCredentials => "Invalid email or password.",
            SignInFailure::Disabled => "This account is disabled.",
            SignInFailure::Throttled { .. } if on_page => {
                "Too many failed sign-in attempts. Please wait a few minutes and try again."
            }
            SignInFailure::Throttled { .. } => "Too many failed sign-in attempts. Try again later.",
        }
    }

    /// The `Retry-After` header value, for a lockout.
    pub fn retry_after(self) -> Option<String> {
        match self {
            SignInFailure::Throttled { retry_after_secs } => Some(retry_after_secs.to_string()),
            _ => None,
        }
    }
}

/// The request families, each answering a malformed request its own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// The token endpoint, revocation, introspection and the resource API: RFC 6749 §5.2
    /// `invalid_request`.
    OAuth,
    /// `/api/oauth_login`: its JSON `{"success":false,"message":…}`.
    Login,
    /// The sign-in page: the HTML error page.
    Page,
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
    /// The token was not issued with the scope this resource needs (UserInfo: `openid`).
    InsufficientScope,
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
    /// `/api/oauth_login` refused the sign-in (the page shows itself again instead).
    #[error("login failed: {0:?}")]
    Login(SignInFailure),
    #[error("bearer error: {0:?}")]
    Bearer(BearerError),
    /// A CORS preflight from an origin no client registered (or for a client that did not
    /// register it): refused, without CORS headers, so the browser blocks the call.
    #[error("CORS preflight refused")]
    PreflightRefused,
    #[error("bad authorization request: {0}")]
    AuthorizePage(&'static str),
    #[error("storage failure: {0}")]
    Store(#[from] StoreError),
    /// No id_token signing key could be had (storage, or an unusable stored key).
    #[error("signing failure: {0}")]
    Signing(#[from] crate::oidc_keys::KeyError),
    /// `/healthz` found the database untrustworthy (the reason is shown: it names no secret).
    #[error("unhealthy: {0}")]
    Unhealthy(StoreError),
}

impl ApiError {
    /// The one mapping of a request that could not be parsed to its family's answer.
    pub fn bad_params(family: Family, error: ParamError) -> ApiError {
        let page = |message| ApiError::AuthorizePage(message);
        let login = |message| ApiError::Login(SignInFailure::BadRequest(message));
        match (error, family) {
            (ParamError::TooLarge, _) => ApiError::PayloadTooLarge,
            (ParamError::TimedOut, _) => ApiError::RequestTimeout,
            (_, Family::OAuth) => {
                ApiError::OAuth(OAuthErrorCode::InvalidRequest, error.description())
            }
            (ParamError::Duplicate, Family::Page) => page("A parameter was sent more than once."),
            (_, Family::Page) => page("The sign-in request is malformed."),
            (ParamError::Duplicate, Family::Login) => login("A field was sent more than once."),
            (ParamError::ValueTooLong, Family::Login) => login("A field value is too long."),
            (ParamError::BadEncoding, Family::Login) => {
                login("Fields must be valid UTF-8 without NUL characters.")
            }
            (ParamError::NotAString, Family::Login) => login("Every field must be a string."),
            (ParamError::TooManyParams, Family::Login) => login("Too many fields."),
            (ParamError::Unreadable, Family::Login) => login("The request body could not be read."),
            (ParamError::BadJson | ParamError::UnsupportedContentType, Family::Login) => {
                login("The request body must be a JSON object.")
            }
        }
    }
}

/// The status of an HTML error page (a request the browser's user cannot fix by retrying).
const PAGE_ERROR_STATUS: StatusCode = StatusCode::BAD_REQUEST;

impl ApiError {
    /// An error the browser sees as a page: its status and message, which the caller
    /// renders in the request's look. `None` for every other error.
    pub fn page_error(&self) -> Option<(StatusCode, &'static str)> {
        match self {
            ApiError::AuthorizePage(message) => Some((PAGE_ERROR_STATUS, message)),
            _ => None,
        }
    }

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
                    | OAuthErrorCode::InvalidScope
                    | OAuthErrorCode::UnauthorizedClient
                    | OAuthErrorCode::AuthorizationPending
                    | OAuthErrorCode::SlowDown
                    | OAuthErrorCode::AccessDenied
                    | OAuthErrorCode::ExpiredToken => StatusCode::BAD_REQUEST,
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
                let mut response = http::json(
                    failure.status(),
                    &serde_json::json!({"success": false, "message": failure.message(false)}),
                );
                if let Some(seconds) = failure.retry_after() {
                    http::set_header(&mut response, "retry-after", &seconds);
                } else {
                    http::no_store(&mut response);
                }
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
                    BearerError::InsufficientScope => (
                        StatusCode::FORBIDDEN,
                        "Bearer realm=\"oauthd\", error=\"insufficient_scope\", scope=\"openid\"",
                        serde_json::json!({"error": "insufficient_scope", "error_description": "the token was not issued with the openid scope"}),
                    ),
                };
                let mut response = http::json(status, &body);
                http::set_header(&mut response, "www-authenticate", challenge);
                response
            }
            ApiError::PreflightRefused => http::text(StatusCode::FORBIDDEN, "origin not allowed\n"),
            // The route table renders these in the request's look (`page_error`); this
            // plain answer is for callers without a Host to brand by.
            ApiError::AuthorizePage(message) => http::text(PAGE_ERROR_STATUS, message),
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
            ApiError::Signing(e) => {
                tracing::error!(error = %e, "id_token signing failed");
                let mut response = http::text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "service temporarily unavailable\n",
                );
                http::set_header(&mut response, "retry-after", STORAGE_RETRY_AFTER);
                response
            }
            ApiError::Unhealthy(e) => {
                crate::log_limit::storage_error("health check failed", &e);
                let mut response = http::bytes(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain; charset=utf-8",
                    format!("unhealthy: {e}\n").into(),
                );
                http::set_header(&mut response, "retry-after", STORAGE_RETRY_AFTER);
                response
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_failures_answer_the_same_status_on_both_front_ends() {
        let table = [
            (SignInFailure::BadRequest("x"), 400),
            (SignInFailure::StaleForm, 403),
            (SignInFailure::WrongCredentials, 401),
            (SignInFailure::Disabled, 403),
            (
                SignInFailure::Throttled {
                    retry_after_secs: 7,
                },
                429,
            ),
        ];
        for (failure, status) in table {
            assert_eq!(failure.status().as_u16(), status, "{failure:?}");
            let api = ApiError::Login(failure).into_response();
            assert_eq!(api.status().as_u16(), status, "{failure:?}");
            let retry = api
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap());
            assert_eq!(retry, failure.retry_after().as_deref());
        }
        assert_eq!(
            SignInFailure::Throttled {
                retry_after_secs: 7
            }
            .retry_after()
            .as_deref(),
            Some("7")
        );
    }

    #[test]
    fn malformed_requests_answer_their_familys_shape() {
        let all = [
            ParamError::TooLarge,
            ParamError::TimedOut,
            ParamError::Duplicate,
            ParamError::BadEncoding,
            ParamError::ValueTooLong,
            ParamError::BadJson,
            ParamError::NotAString,
            ParamError::TooManyParams,
            ParamError::UnsupportedContentType,
            ParamError::Unreadable,
        ];
        for error in all {
            for family in [Family::OAuth, Family::Login, Family::Page] {
                let status = ApiError::bad_params(family, error).into_response().status();
                let expected = match error {
                    ParamError::TooLarge => 413,
                    ParamError::TimedOut => 408,
                    _ => 400,
                };
                assert_eq!(status.as_u16(), expected, "{error:?} {family:?}");
                let mapped = ApiError::bad_params(family, error);
                let shape_ok = match (error, family) {
                    (ParamError::TooLarge | ParamError::TimedOut, _) => true,
                    (_, Family::OAuth) => {
                        matches!(mapped, ApiError::OAuth(OAuthErrorCode::InvalidRequest, _))
                    }
                    (_, Family::Login) => {
                        matches!(mapped, ApiError::Login(SignInFailure::BadRequest(_)))
                    }
                    (_, Family::Page) => matches!(mapped, ApiError::AuthorizePage(_)),
                };
                assert!(shape_ok, "{error:?} {family:?} -> {mapped:?}");
            }
        }
    }
}

/// The answers of the plain-HTTP listener of `--http-listen`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlainHttp {
    /// An ACME HTTP-01 challenge being offered.
    Challenge,
    /// A challenge token not (or no longer) offered.
    UnknownChallenge,
    /// Everything else: 308 to https, keeping the method and body.
    ToHttps,
}

impl PlainHttp {
    pub fn status(self) -> StatusCode {
        match self {
            PlainHttp::Challenge => StatusCode::OK,
            PlainHttp::UnknownChallenge => StatusCode::NOT_FOUND,
            PlainHttp::ToHttps => StatusCode::PERMANENT_REDIRECT,
        }
    }
}
