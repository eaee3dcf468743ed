//! The consent screen of third-party clients, once the user is known (after the sign-in
//! form or from the browser's session): `oauth::decide_consent` says whether to ask; Allow
//! stores the consent and issues the code, Deny redirects with `access_denied`. The form
//! carries the user as a sealed ticket (the server's key, 10 minutes), so it works with
//! sessions off too, and the CSRF token like every form (checked by `authorize`).

use std::net::IpAddr;

use hyper::header::HeaderMap;
use hyper::{Response, StatusCode};

use super::flow::{code_redirect, error_redirect, request_fields};
use super::{attempts, page};
use crate::app::App;
use crate::assets::{self, escape};
use crate::brand;
use crate::error::ApiError;
use crate::http::{self, Body, Params};
use crate::oauth::{self, AttemptReason, ConsentDecision};
use crate::signin::{self, AuthorizationRequest};
use crate::store::{self, consents};

/// The error page of a consent answer whose form is stale or forged.
pub const STALE_FORM: &str =
    "This consent form has expired. Go back to the application and try again.";

/// How long the consent screen may wait for its answer.
const TICKET_SECS: i64 = 600;

/// The signed-in user's answer to `request`: a code, the consent screen, or
/// `consent_required` (`prompt=none`).
pub async fn proceed(
    app: &App,
    headers: &HeaderMap,
    request: &AuthorizationRequest,
    user_id: String,
    email: String,
    ip: IpAddr,
) -> Result<Response<Body>, ApiError> {
    let stored = if request.client.first_party {
        None
    } else {
        let (user, client) = (user_id.clone(), request.client.client_id.clone());
        app.store
            .read(move |conn| consents::find(conn, &user, &client))
            .await?
    };
    let decision = oauth::decide_consent(
        request.client.first_party,
        stored.as_deref(),
        request.scope.as_deref(),
        request.prompt,
    );
    match decision {
        ConsentDecision::Skip => issue_code(app, request, user_id, email, ip).await,
        ConsentDecision::ConsentRequired => {
            let reason = AttemptReason::ConsentRequired;
            attempts::authorize_refused(app, &request.client.client_id, reason);
            Ok(error_redirect(
                app,
                &request.redirect_uri,
                "consent_required",
                "the user has not allowed this client",
                request.state.as_deref(),
            ))
        }
        ConsentDecision::Ask => Ok(consent_page(app, headers, request, &user_id, &email).await),
    }
}

/// `POST /oauth/authorize` with `consent=allow|deny`, from the consent screen, once the
/// caller checked its CSRF token and origin.
pub async fn submit(
    app: &App,
    request: &AuthorizationRequest,
    params: &Params,
    ip: IpAddr,
) -> Result<Response<Body>, ApiError> {
    let user_id = params.get("consent_user").unwrap_or_default().to_owned();
    let email = params.get("consent_email").unwrap_or_default().to_owned();
    let until = params.get("consent_until").unwrap_or_default();
    let sealed = app.csrf.unseal(
        &ticket(request, &user_id, &email, until),
        params.get("consent_seal"),
    );
    let live = until.parse::<i64>().is_ok_and(|until| store::now() < until);
    if !(sealed && live) {
        return Err(ApiError::AuthorizePage(STALE_FORM));
    }
    if params.get("consent") != Some("allow") {
        let reason = AttemptReason::ConsentDenied;
        attempts::authorize_refused(app, &request.client.client_id, reason);
        return Ok(error_redirect(
            app,
            &request.redirect_uri,
            "access_denied",
            "the user denied the request",
            request.state.as_deref(),
        ));
    }
    let (user, client) = (user_id.clone(), request.client.client_id.clone());
    let (requested, audited_email) = (request.scope.clone(), email.clone());
    app.store
        .write(move |conn| {
            let stored = consents::find_for_widening(conn, &user, &client)?;
            let scope = oauth::consented_scope(Some(&stored), requested.as_deref());
            consents::store(conn, &user, &client, &scope)?;
            store::audit::record(
                conn,
                &store::audit::Event {
                    event: "consent_granted",
                    user_email: Some(&audited_email),
                    client_id: Some(&client),
                    detail: Some(&scope),
                    ..store::audit::Event::default()
                },
            )
        })
        .await?;
    issue_code(app, request, user_id, email, ip).await
}

/// Issues the code (its success logged for `client log`) and redirects with it.
async fn issue_code(
    app: &App,
    request: &AuthorizationRequest,
    user_id: String,
    email: String,
    ip: IpAddr,
) -> Result<Response<Body>, ApiError> {
    let logged = attempts::code_issued(&request.client.client_id);
    let code = signin::issue_code(app, request, user_id, email, ip, logged).await?;
    Ok(code_redirect(app, request, &code))
}

/// The facts the consent form's seal covers: who answers, for which client, redirect
/// URI and scope, until when.
fn ticket<'a>(
    request: &'a AuthorizationRequest,
    user_id: &'a str,
    email: &'a str,
    until: &'a str,
) -> [&'a str; 6] {
    [
        user_id,
        email,
        &request.client.client_id,
        request.redirect_uri.as_str(),
        request.scope.as_deref().unwrap_or_default(),
        until,
    ]
}

/// The consent screen: the requested scopes, Allow / Deny.
async fn consent_page(
    app: &App,
    headers: &HeaderMap,
    request: &AuthorizationRequest,
    user_id: &str,
    email: &str,
) -> Response<Body> {
    let brand = brand::resolve(app, headers, request.client.brand.as_deref()).await;
    let csrf = app.csrf.issue(headers);
    let until = (store::now() + TICKET_SECS).to_string();
    let seal = app.csrf.seal(&ticket(request, user_id, email, &until));
    let mut hidden = request_fields(request, &csrf.form_token);
    hidden.extend([
        ("consent_user", user_id),
        ("consent_email", email),
        ("consent_until", until.as_str()),
        ("consent_seal", seal.as_str()),
    ]);
    let names: String = request
        .scope
        .as_deref()
        .unwrap_or_default()
        .split_whitespace()
        .map(|name| format!("<li class=\"scope\">{}</li>", escape(name)))
        .collect();
    let scope_list = if names.is_empty() {
        "<p id=\"scopes\" class=\"hint\">It asks for no particular permission.</p>".to_owned()
    } else {
        format!("<p>It asks for these permissions:</p>\n<ul id=\"scopes\">{names}</ul>")
    };
    let content = assets::render(
        assets::template("consent.html"),
        &[
            ("client_name", &escape(&request.client.name)),
            ("email", &escape(email)),
            ("scope_list", &scope_list),
            ("hidden_fields", &page::hidden_fields(&hidden)),
        ],
    );
    let mut response = page::branded(StatusCode::OK, "Allow access", &content, &brand);
    http::set_header(&mut response, "set-cookie", &csrf.set_cookie);
    response
}
