//! The user's own account page at `/account`, branded by Host: the applications holding
//! access (each with "revoke"), a password change that asks for the current password
//! (through the same throttled, equal-cost check as a sign-in), and sign out. It needs a
//! browser session; without one it shows a sign-in form that comes back here. Every form
//! carries the server-keyed CSRF token and is refused from another origin.

use std::net::SocketAddr;

use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::{Request, Response, StatusCode};

use super::authorize::same_origin;
use super::page;
use crate::app::App;
use crate::assets::{self, escape};
use crate::brand::{self, PageBrand};
use crate::error::{ApiError, Family, SignInFailure};
use crate::http::{self, Body, Params};
use crate::secret::Secret;
use crate::session::{self, Current};
use crate::signin::{self, SignIn};
use crate::store::{self, account};

/// What the audit trail names as the client of the account page's checks.
const ACCOUNT_CLIENT: &str = "account";

/// `GET /account`.
pub async fn show(app: &App, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let headers = req.headers();
    let brand = brand::resolve(app, headers, None).await;
    match live_session(app, headers).await? {
        Some(current) => account_page(app, headers, &brand, &current, None).await,
        None => Ok(signin_page(app, headers, &brand, "", None)),
    }
}

/// `POST /account`: one of the page's forms (`op`): signin, revoke, password, signout.
pub async fn submit(
    app: &App,
    req: Request<Incoming>,
    remote: SocketAddr,
) -> Result<Response<Body>, ApiError> {
    let bad = |e| ApiError::bad_params(Family::Page, e);
    let (parts, body) = http::read_body(req).await.map_err(bad)?;
    let params = http::body_params(&parts.headers, &body).map_err(bad)?;
    let headers = &parts.headers;
    let brand = brand::resolve(app, headers, None).await;
    let fresh = app.csrf.verify(headers, params.get("csrf_token")) && same_origin(headers);
    let current = live_session(app, headers).await?;
    let (Some(current), true) = (current, fresh) else {
        if !fresh {
            let failure = SignInFailure::StaleForm;
            return Ok(signin_page(app, headers, &brand, "", Some(failure)));
        }
        return match params.get("op") {
            Some("signin") => sign_in(app, headers, &brand, &params, remote).await,
            _ => Ok(signin_page(app, headers, &brand, "", None)),
        };
    };
    match params.get("op") {
        Some("revoke") => {
            let client_id = params.get("client_id").unwrap_or_default().to_owned();
            let (user_id, email) = (current.row.user_id.clone(), current.row.email.clone());
            app.store
                .write(move |conn| account::revoke_app(conn, &user_id, &email, &client_id))
                .await?;
            Ok(http::redirect("/account"))
        }
        Some("password") => change_password(app, headers, &brand, &current, &params, remote).await,
        Some("signout") => {
            let clear = session::end(app, headers).await?;
            Ok(page::signed_out(&brand, &clear))
        }
        _ => account_page(app, headers, &brand, &current, None).await,
    }
}

/// The browser's session, if it still signs its user in.
async fn live_session(app: &App, headers: &HeaderMap) -> Result<Option<Current>, ApiError> {
    let current = session::lookup(app, headers).await?;
    Ok(current.filter(|c| c.is_live(app)))
}

/// Signs in with the form's email and password, starts a session, back to `/account`.
async fn sign_in(
    app: &App,
    headers: &HeaderMap,
    brand: &PageBrand,
    params: &Params,
    remote: SocketAddr,
) -> Result<Response<Body>, ApiError> {
    let email = params.get("email").unwrap_or_default().trim().to_owned();
    let password = Secret::new(params.get("password").unwrap_or_default());
    if email.is_empty() || password.is_empty() {
        let failure = SignInFailure::BadRequest("Enter your email and password.");
        return Ok(signin_page(app, headers, brand, &email, Some(failure)));
    }
    match signin::sign_in(app, &email, &password, remote.ip(), ACCOUNT_CLIENT).await? {
        SignIn::Succeeded { user_id, .. } => {
            let cookie = session::start(app, headers, &user_id).await?;
            let mut redirect = http::redirect("/account");
            if let Some(cookie) = cookie {
                http::set_header(&mut redirect, "set-cookie", &cookie);
            }
            Ok(redirect)
        }
        SignIn::Busy => Err(ApiError::Busy),
        SignIn::Refused(failure) => Ok(signin_page(app, headers, brand, &email, Some(failure))),
    }
}

/// Checks the current password like a sign-in (throttled), then stores the new one. Like
/// `oauthd user passwd`, this revokes the user's grants and ends their sessions; this
/// browser gets a new session.
async fn change_password(
    app: &App,
    headers: &HeaderMap,
    brand: &PageBrand,
    current: &Current,
    params: &Params,
    remote: SocketAddr,
) -> Result<Response<Body>, ApiError> {
    let old = Secret::new(params.get("current_password").unwrap_or_default());
    let new = params.get("new_password").unwrap_or_default().to_owned();
    let refuse = |message| SignInFailure::BadRequest(message);
    let problem = if old.is_empty() || new.is_empty() {
        Some(refuse("Enter your current password and the new one."))
    } else if params.get("repeat_password") != Some(new.as_str()) {
        Some(refuse("The new passwords do not match."))
    } else if new.len() > 4096 {
        Some(refuse("The new password is too long."))
    } else {
        None
    };
    if let Some(failure) = problem {
        return account_page(app, headers, brand, current, Some(Err(failure))).await;
    }
    let email = current.row.email.clone();
    match signin::sign_in(app, &email, &old, remote.ip(), ACCOUNT_CLIENT).await? {
        SignIn::Succeeded { .. } => {}
        SignIn::Busy => return Err(ApiError::Busy),
        SignIn::Refused(failure) => {
            return account_page(app, headers, brand, current, Some(Err(failure))).await
        }
    }
    let hash = app.hasher.hash(new).await.map_err(|_| ApiError::Busy)?;
    let stored_email = email.clone();
    app.store
        .write(move |conn| {
            store::users::set_password(conn, &stored_email, &hash)?;
            store::audit::record(
                conn,
                &store::audit::Event {
                    event: "account_passwd",
                    user_email: Some(&stored_email),
                    ..store::audit::Event::default()
                },
            )
        })
        .await?;
    let cookie = session::start(app, headers, &current.row.user_id).await?;
    let notice = Some(Ok("Your password was changed."));
    let mut page = account_page(app, headers, brand, current, notice).await?;
    if let Some(cookie) = cookie {
        http::append_header(&mut page, "set-cookie", &cookie);
    }
    Ok(page)
}

/// The account page, with an optional notice or error.
async fn account_page(
    app: &App,
    headers: &HeaderMap,
    brand: &PageBrand,
    current: &Current,
    message: Option<Result<&str, SignInFailure>>,
) -> Result<Response<Body>, ApiError> {
    let user_id = current.row.user_id.clone();
    let apps = app
        .store
        .read(move |conn| account::apps(conn, &user_id))
        .await?;
    let csrf = app.csrf.issue(headers);
    let csrf_field = page::hidden_fields(&[("csrf_token", &csrf.form_token)]);
    let apps_html = if apps.is_empty() {
        "<p id=\"no-apps\" class=\"hint\">No apps have access to your account.</p>".to_owned()
    } else {
        let items: String = apps
            .iter()
            .map(|a| {
                format!(
                    "<li class=\"app\"><span class=\"app-name\">{}</span>\
                     <form method=\"post\" action=\"/account\">{csrf_field}{}\
                     <button class=\"revoke secondary\" type=\"submit\">Revoke</button></form></li>\n",
                    escape(&a.name),
                    page::hidden_fields(&[("op", "revoke"), ("client_id", &a.client_id)]),
                )
            })
            .collect();
        format!("<ul id=\"apps\" class=\"apps\">\n{items}</ul>")
    };
    let (status, message_block) = match message {
        None => (StatusCode::OK, String::new()),
        Some(Ok(notice)) => (
            StatusCode::OK,
            format!(
                "<p id=\"notice\" class=\"notice\" role=\"status\">{}</p>",
                escape(notice)
            ),
        ),
        Some(Err(failure)) => (
            failure.status(),
            page::error_block(Some(failure.message(true))),
        ),
    };
    let content = assets::render(
        assets::template("account.html"),
        &[
            ("email", &escape(&current.row.email)),
            ("message_block", &message_block),
            ("apps", &apps_html),
            ("csrf_field", &csrf_field),
        ],
    );
    let mut response = page::branded(status, "Your account", &content, brand);
    http::set_header(&mut response, "set-cookie", &csrf.set_cookie);
    Ok(response)
}

/// The sign-in form that leads back to `/account`.
fn signin_page(
    app: &App,
    headers: &HeaderMap,
    brand: &PageBrand,
    email: &str,
    failure: Option<SignInFailure>,
) -> Response<Body> {
    let csrf = app.csrf.issue(headers);
    let hidden = page::hidden_fields(&[("csrf_token", &csrf.form_token), ("op", "signin")]);
    let error_block = page::error_block(failure.map(|f| f.message(true)));
    let status = failure.map_or(StatusCode::OK, SignInFailure::status);
    let content = page::signin_form("/account", "your account", "", email, &error_block, &hidden);
    let mut response = page::branded(status, "Sign in", &content, brand);
    if let Some(seconds) = failure.and_then(SignInFailure::retry_after) {
        http::set_header(&mut response, "retry-after", &seconds);
    }
    http::set_header(&mut response, "set-cookie", &csrf.set_cookie);
    response
}
