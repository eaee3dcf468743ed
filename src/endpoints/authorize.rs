//! The browser flow: the branded sign-in page at `/oauth/authorize`, its form
//! post (and the consent screen's, see `consent`), and the GroveStreams `/Modern/` entry
//! point. Errors before the client and its
//! redirect URI are trusted show an error page and never redirect; later protocol errors
//! go back to the client's redirect URI (RFC 6749 §4.1.2.1).

use std::net::SocketAddr;

use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::{Request, Response, StatusCode};

use super::flow::{error_redirect, request_fields};
use super::{attempts, consent, page};
use crate::app::App;
use crate::assets::{self, escape};
use crate::brand::{self, PageBrand};
use crate::csrf::Issued;
use crate::error::{ApiError, Family, SignInFailure};
use crate::http::{self, Body, ParamError, Params};
use crate::oauth::{self, Decision};
use crate::secret::Secret;
use crate::session::{self, Current};
use crate::signin::{self, AuthorizationRequest, RedirectableError, SignIn};
use crate::store;

/// `GET /oauth/authorize`: checks the request, then answers from the browser's session
/// (a code, no form) or shows the sign-in page, as `prompt` and `max_age` decide.
pub async fn show(
    app: &App,
    req: Request<Incoming>,
    remote: SocketAddr,
) -> Result<Response<Body>, ApiError> {
    let params = http::query_params(&req).map_err(page_error)?;
    let headers = req.headers();
    let request = match trusted_request(app, &params).await? {
        Ok(request) => request,
        Err(redirect) => return Ok(redirect),
    };
    let current = session::lookup(app, headers).await?;
    let decision = oauth::decide_prompt(
        current.as_ref().map(Current::facts).as_ref(),
        request.prompt,
        request.max_age,
        store::now(),
        app.config.session_idle_secs,
    );
    match (decision, current) {
        (Decision::UseSession, Some(current)) => {
            session::touch_if_due(app, &current).await?;
            let row = current.row;
            consent::proceed(app, headers, &request, row.user_id, row.email, remote.ip()).await
        }
        (Decision::LoginRequired, _) => {
            let reason = oauth::AttemptReason::LoginRequired;
            attempts::authorize_refused(app, &request.client.client_id, reason);
            Ok(error_redirect(
                app,
                &request.redirect_uri,
                "login_required",
                "the user is not signed in",
                request.state.as_deref(),
            ))
        }
        _ => {
            let brand = brand::resolve(app, headers, request.client.brand.as_deref()).await;
            let csrf = app.csrf.issue(headers);
            let email = params.non_empty("email").unwrap_or_default();
            Ok(signin_page(
                StatusCode::OK,
                &brand,
                &request,
                email,
                None,
                &csrf,
            ))
        }
    }
}

/// `POST /oauth/authorize`: signs the user in and redirects back with a code, or shows
/// the page again with the error.
pub async fn submit(
    app: &App,
    req: Request<Incoming>,
    remote: SocketAddr,
) -> Result<Response<Body>, ApiError> {
    let (parts, body) = http::read_body(req).await.map_err(page_error)?;
    let params = http::body_params(&parts.headers, &body).map_err(page_error)?;
    let request = match trusted_request(app, &params).await? {
        Ok(request) => request,
        Err(redirect) => return Ok(redirect),
    };
    let headers = &parts.headers;
    if params.get("consent").is_some() {
        if !app.csrf.verify(headers, params.get("csrf_token")) || !same_origin(headers) {
            return Err(ApiError::AuthorizePage(consent::STALE_FORM));
        }
        return consent::submit(app, &request, &params, remote.ip()).await;
    }
    let brand = brand::resolve(app, headers, request.client.brand.as_deref()).await;
    let csrf = app.csrf.issue(headers);
    let email = params.get("email").unwrap_or_default().trim().to_owned();
    let again = |failure: SignInFailure| {
        let mut page = signin_page(
            failure.status(),
            &brand,
            &request,
            &email,
            Some(failure.message(true)),
            &csrf,
        );
        if let Some(seconds) = failure.retry_after() {
            http::set_header(&mut page, "retry-after", &seconds);
        }
        Ok(page)
    };

    if !app.csrf.verify(headers, params.get("csrf_token")) || !same_origin(headers) {
        return again(SignInFailure::StaleForm);
    }
    let password = Secret::new(params.get("password").unwrap_or_default());
    if email.is_empty() || password.is_empty() {
        return again(SignInFailure::BadRequest("Enter your email and password."));
    }
    let ip = remote.ip();
    let client_id = &request.client.client_id;
    match signin::sign_in(app, &email, &password, ip, client_id).await? {
        SignIn::Succeeded { user_id, email } => {
            let session_cookie = session::start(app, headers, &user_id).await?;
            let mut answer = consent::proceed(app, headers, &request, user_id, email, ip).await?;
            if let Some(cookie) = session_cookie {
                http::append_header(&mut answer, "set-cookie", &cookie);
            }
            Ok(answer)
        }
        SignIn::Busy => Err(ApiError::Busy),
        SignIn::Refused(failure) => {
            attempts::sign_in_refused(app, client_id, attempts::AUTHORIZE, &failure);
            again(failure)
        }
    }
}

/// `GET /Modern/`: the GroveStreams entry point. Its parameters usually sit after `#`,
/// which only the browser sees, so a small script forwards them to `/oauth/authorize`.
/// The short-lived page is in the Host's look like the sign-in page it leads to.
pub async fn modern(app: &App, req: &Request<Incoming>) -> Response<Body> {
    let hint = match req.uri().query().filter(|q| !q.is_empty()) {
        Some(query) => format!(
            "JavaScript is off. <a href=\"/oauth/authorize?{}\">Continue to sign in</a>.",
            escape(query)
        ),
        None => {
            "This sign-in link needs JavaScript. Please enable it, or open the link in a browser."
                .to_owned()
        }
    };
    let content = assets::render(assets::template("modern.html"), &[("noscript_hint", &hint)]);
    let brand = brand::resolve(app, req.headers(), None).await;
    page::branded(StatusCode::OK, "Signing in", &content, &brand)
}

/// Resolves client and redirect URI (error page when untrusted) and checks the request
/// (redirect with an error when not acceptable). The outer `Result` is for storage errors.
async fn trusted_request(
    app: &App,
    params: &Params,
) -> Result<Result<AuthorizationRequest, Response<Body>>, ApiError> {
    let (client, redirect_uri) =
        signin::identify_client(app, params)
            .await?
            .map_err(|untrusted| {
                attempts::untrusted(app, params, untrusted);
                ApiError::AuthorizePage(untrusted.message())
            })?;
    let client_id = client.client_id.clone();
    match signin::check_request(client, redirect_uri.clone(), params) {
        Ok(request) => Ok(Ok(request)),
        Err(RedirectableError {
            refusal,
            description,
        }) => {
            let reason = oauth::AttemptReason::of_authorize(refusal);
            attempts::authorize_refused(app, &client_id, reason);
            Ok(Err(error_redirect(
                app,
                &redirect_uri,
                refusal.error(),
                description,
                params.non_empty("state"),
            )))
        }
    }
}

fn page_error(error: ParamError) -> ApiError {
    ApiError::bad_params(Family::Page, error)
}

/// Renders the sign-in page and sets the CSRF cookie it relies on.
fn signin_page(
    status: StatusCode,
    brand: &PageBrand,
    request: &AuthorizationRequest,
    email: &str,
    error: Option<&str>,
    csrf: &Issued,
) -> Response<Body> {
    let hidden_fields = page::hidden_fields(&request_fields(request, &csrf.form_token));
    let error_block = page::error_block(error);
    let client_name = escape(&request.client.name);
    let fineprint = format!(
        "<p class=\"fineprint\">{client_name} will be able to act on your behalf. You can \
         revoke its access at any time on <a href=\"/account\">your account page</a>.</p>"
    );
    let content = page::signin_form(
        "/oauth/authorize",
        &client_name,
        &fineprint,
        email,
        &error_block,
        &hidden_fields,
    );
    let mut response = page::branded(status, "Sign in", &content, brand);
    http::set_header(&mut response, "set-cookie", &csrf.set_cookie);
    response
}

/// A browser that sends `Origin` must be posting from this same host. `Origin: null`
/// (a sandboxed frame, a `data:` page, a redirect chain) is refused: our pages say
/// `Referrer-Policy: same-origin`, so a real browser posting our own form sends its
/// origin. A client that sends no `Origin` at all still needs the CSRF token.
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(hyper::header::ORIGIN) else {
        return true;
    };
    let (Ok(origin), Some(Ok(host))) = (
        origin.to_str(),
        headers.get(hyper::header::HOST).map(|h| h.to_str()),
    ) else {
        return false;
    };
    origin
        .split_once("://")
        .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    #[test]
    fn origin_must_match_host_when_sent() {
        let mut headers = HeaderMap::new();
        headers.insert(
            hyper::header::HOST,
            HeaderValue::from_static("login.example.com:8080"),
        );
        assert!(same_origin(&headers));
        headers.insert(
            hyper::header::ORIGIN,
            HeaderValue::from_static("http://login.example.com:8080"),
        );
        assert!(same_origin(&headers));
        headers.insert(
            hyper::header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(!same_origin(&headers));
        headers.insert(hyper::header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!same_origin(&headers), "an opaque origin is refused");
        headers.remove(hyper::header::HOST);
        headers.insert(
            hyper::header::ORIGIN,
            HeaderValue::from_static("http://login.example.com:8080"),
        );
        assert!(!same_origin(&headers), "no Host to compare with");
    }
}
