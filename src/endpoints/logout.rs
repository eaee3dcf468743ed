//! RP-Initiated Logout 1.0 at `/oauth/logout` (the `end_session_endpoint`): ends the
//! browser's session and sends it back to the client's registered
//! `post_logout_redirect_uri` with `state`, or shows a "signed out" page. A request that
//! does not name the session's own user (no or another `id_token_hint`) is confirmed by
//! the user first, on a CSRF-protected form, so a forged link cannot sign anyone out. A
//! hint none of our keys signed, or issued by another issuer, is refused outright.

use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::{Method, Request, Response, StatusCode};

use super::authorize::same_origin;
use super::page;
use crate::app::App;
use crate::brand;
use crate::error::{ApiError, Family};
use crate::http::{self, Body, Params};
use crate::oauth::{self, RedirectUri};
use crate::oidc_keys;
use crate::session;
use crate::store;

/// `GET` or `POST /oauth/logout`.
pub async fn logout(app: &App, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let bad = |e| ApiError::bad_params(Family::Page, e);
    let post = req.method() == Method::POST;
    let (headers, params) = if post {
        let (parts, body) = http::read_body(req).await.map_err(bad)?;
        let params = http::body_params(&parts.headers, &body).map_err(bad)?;
        (parts.headers, params)
    } else {
        let params = http::query_params(&req).map_err(bad)?;
        (req.headers().clone(), params)
    };
    let hint = match params.non_empty("id_token_hint") {
        Some(raw) => Some(verified_hint(app, raw).await?),
        None => None,
    };
    let back = return_to(app, &params, hint.as_ref()).await?;
    let current = session::lookup(app, &headers).await?;
    let user = current
        .as_ref()
        .filter(|c| c.is_live(app))
        .map(|c| c.row.user_id.as_str());
    let confirmed =
        post && same_origin(&headers) && app.csrf.verify(&headers, params.get("csrf_token"));
    if !confirmed && !oauth::ends_without_asking(user, hint.as_ref()) {
        return Ok(confirm_page(app, &headers, &params).await);
    }
    let clear_cookie = session::end(app, &headers).await?;
    match back {
        Some(uri) => {
            let state: Vec<(&str, &str)> = params
                .non_empty("state")
                .map(|s| ("state", s))
                .into_iter()
                .collect();
            let mut response = http::redirect(&uri.with_query(&state));
            http::set_header(&mut response, "set-cookie", &clear_cookie);
            Ok(response)
        }
        None => {
            let brand = brand::resolve(app, &headers, None).await;
            Ok(page::signed_out(&brand, &clear_cookie))
        }
    }
}

/// Refused hints: a forged or foreign token names no one, and silently ignoring it would
/// let such a link still sign the user out.
const BAD_HINT: &str =
    "This sign-out link carries an id_token_hint this server did not issue, so it was not followed.";

/// The claims of an `id_token_hint` one of our keys signed for this issuer; anything else
/// is refused with an error page (no redirect, the session stays).
async fn verified_hint(app: &App, raw: &str) -> Result<oauth::HintClaims, ApiError> {
    let claims = oidc_keys::verify_own(&app.store, raw).await?;
    claims
        .and_then(|claims| oauth::hint_claims(&claims, &app.config.issuer))
        .ok_or(ApiError::AuthorizePage(BAD_HINT))
}

/// The registered post-logout URI the request asks for, if the client it names has it.
async fn return_to(
    app: &App,
    params: &Params,
    hint: Option<&oauth::HintClaims>,
) -> Result<Option<RedirectUri>, ApiError> {
    let Some(client_id) = oauth::logout_client(params.non_empty("client_id"), hint) else {
        return Ok(None);
    };
    let Some(requested) = params
        .non_empty("post_logout_redirect_uri")
        .and_then(|raw| RedirectUri::parse(raw).ok())
    else {
        return Ok(None);
    };
    let registered = app
        .store
        .read(move |conn| store::post_logout::list(conn, &client_id))
        .await?;
    let allowed = oauth::return_uri(Some(requested.as_str()), &registered).is_some();
    Ok(allowed.then_some(requested))
}

/// "Sign out?" with a button that posts the same request back with a CSRF token.
async fn confirm_page(app: &App, headers: &HeaderMap, params: &Params) -> Response<Body> {
    let brand = brand::resolve(app, headers, None).await;
    let csrf = app.csrf.issue(headers);
    let mut fields = vec![("csrf_token", csrf.form_token.as_str())];
    for name in [
        "id_token_hint",
        "client_id",
        "post_logout_redirect_uri",
        "state",
    ] {
        if let Some(value) = params.non_empty(name) {
            fields.push((name, value));
        }
    }
    let content = format!(
        "<p class=\"lead\" id=\"confirm-signout\">Sign out of this device?</p>\n\
         <form method=\"post\" action=\"/oauth/logout\">\n{}\
         <button id=\"signout\" type=\"submit\">Sign out</button>\n</form>",
        page::hidden_fields(&fields)
    );
    let mut response = page::branded(StatusCode::OK, "Sign out", &content, &brand);
    http::set_header(&mut response, "set-cookie", &csrf.set_cookie);
    response
}
