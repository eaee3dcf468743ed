//! The user's side of the device grant: `/device`, branded by Host like the sign-in page.
//! It asks for the code the device shows (or takes it from `verification_uri_complete`),
//! shows which client asks for which scopes, and lets the user approve or deny after
//! signing in with the same machinery as the sign-in page (`signin::sign_in`: throttled,
//! timing-safe, audited) behind the same CSRF and same-origin checks. Wrong user codes are
//! throttled per client address (across instances on PostgreSQL).

use std::net::{IpAddr, SocketAddr};

use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::{Request, Response, StatusCode};

use super::authorize::same_origin;
use super::page;
use crate::app::App;
use crate::assets::escape;
use crate::brand::{self, PageBrand};
use crate::error::{ApiError, Family, SignInFailure};
use crate::http::{self, Body, ParamError};
use crate::oauth;
use crate::secret::{self, Secret, SecretHash};
use crate::signin::{self, SignIn};
use crate::store::devices::{self, PendingDevice};
use crate::store::{client_log, StoreError};

const BAD_CODE: &str = "That code is not valid, or it has expired. Check the code on your device.";

/// A user code that names a pending authorization.
struct Found {
    device: PendingDevice,
    user_code_hash: SecretHash,
    /// As shown: `BCDF-GHJK`.
    display: String,
}

/// `GET /device[?user_code=…]`: asks for the code, or shows what the code asks for.
pub async fn show(
    app: &App,
    req: Request<Incoming>,
    remote: SocketAddr,
) -> Result<Response<Body>, ApiError> {
    let params = http::query_params(&req).map_err(page_error)?;
    let headers = req.headers();
    let Some(typed) = params.non_empty("user_code") else {
        let brand = brand::resolve(app, headers, None).await;
        return Ok(enter_code_page(StatusCode::OK, &brand, None));
    };
    match lookup(app, typed, remote.ip()).await? {
        Ok(found) => {
            let brand = brand::resolve(app, headers, found.device.client_brand.as_deref()).await;
            Ok(confirm_page(
                app,
                headers,
                StatusCode::OK,
                &brand,
                &found,
                "",
                None,
            ))
        }
        Err(failure) => {
            let brand = brand::resolve(app, headers, None).await;
            Ok(refused(
                enter_code_page(failure.status(), &brand, Some(failure)),
                failure,
            ))
        }
    }
}

/// `POST /device`: signs the user in and records their answer.
pub async fn submit(
    app: &App,
    req: Request<Incoming>,
    remote: SocketAddr,
) -> Result<Response<Body>, ApiError> {
    let (parts, body) = http::read_body(req).await.map_err(page_error)?;
    let params = http::body_params(&parts.headers, &body).map_err(page_error)?;
    let headers = &parts.headers;
    let ip = remote.ip();
    let found = match lookup(app, params.get("user_code").unwrap_or_default(), ip).await? {
        Ok(found) => found,
        Err(failure) => {
            let brand = brand::resolve(app, headers, None).await;
            return Ok(refused(
                enter_code_page(failure.status(), &brand, Some(failure)),
                failure,
            ));
        }
    };
    let brand = brand::resolve(app, headers, found.device.client_brand.as_deref()).await;
    let email = params.get("email").unwrap_or_default().trim().to_owned();
    let again = |failure: SignInFailure| {
        let page = confirm_page(
            app,
            headers,
            failure.status(),
            &brand,
            &found,
            &email,
            Some(failure),
        );
        Ok(refused(page, failure))
    };
    if !app.csrf.verify(headers, params.get("csrf_token")) || !same_origin(headers) {
        return again(SignInFailure::StaleForm);
    }
    let approve = match params.get("action") {
        Some("approve") => true,
        Some("deny") => false,
        _ => return again(SignInFailure::BadRequest("Choose Allow or Deny.")),
    };
    let password = Secret::new(params.get("password").unwrap_or_default());
    if email.is_empty() || password.is_empty() {
        return again(SignInFailure::BadRequest("Enter your email and password."));
    }
    let client_id = found.device.client_id.clone();
    match signin::sign_in(app, &email, &password, ip, &client_id).await? {
        SignIn::Succeeded { user_id, email } => {
            let user_code_hash = found.user_code_hash;
            let remote_addr = ip.to_string();
            let logged = super::attempts::device_decided(&client_id, approve);
            let (store, memory) = (app.store.clone(), app.devices.clone());
            // Its own task, so the memory learns of a committed answer even if this
            // request is dropped meanwhile: polls then stop answering `pending` from it.
            let answer = tokio::spawn(async move {
                let recorded = store
                    .write(move |conn| {
                        // Read and answer in one transaction: of two answers, one wins.
                        let row = devices::find_by_user_code(conn, &user_code_hash)?;
                        if !row.is_some_and(|row| awaits_answer(&row)) {
                            return Ok(false);
                        }
                        let approved_for = approve.then_some((user_id.as_str(), email.as_str()));
                        let recorded = devices::record_answer(
                            conn,
                            &user_code_hash,
                            approved_for,
                            &remote_addr,
                        )?;
                        if recorded {
                            client_log::record(conn, &logged)?;
                        }
                        Ok(recorded)
                    })
                    .await;
                memory.answered();
                recorded
            });
            let recorded = answer.await.map_err(|_| StoreError::TaskFailed)??;
            if !recorded {
                return again(SignInFailure::BadRequest(BAD_CODE));
            }
            Ok(done_page(&brand, approve))
        }
        SignIn::Busy => Err(ApiError::Busy),
        SignIn::Refused(failure) => {
            let device = super::attempts::DEVICE;
            super::attempts::sign_in_refused(app, &client_id, device, &failure);
            again(failure)
        }
    }
}

/// Whether the authorization still takes an answer now.
fn awaits_answer(row: &devices::UserCodeRow) -> bool {
    oauth::awaits_answer(row.status, row.expires_at, crate::store::now())
}

/// Finds the pending authorization a typed code names, counting a wrong code against the
/// address (and refusing the address once it typed too many).
async fn lookup(
    app: &App,
    typed: &str,
    ip: IpAddr,
) -> Result<Result<Found, SignInFailure>, ApiError> {
    if let Err(retry_after_secs) = try_user_code(app, ip).await? {
        return Ok(Err(SignInFailure::Throttled { retry_after_secs }));
    }
    let Some(code) = oauth::normalize_user_code(typed) else {
        return Ok(Err(SignInFailure::BadRequest(BAD_CODE)));
    };
    let user_code_hash = secret::sha256(&code);
    let row = app
        .store
        .read(move |conn| devices::find_by_user_code(conn, &user_code_hash))
        .await?;
    let Some(device) = row.filter(awaits_answer).map(|row| row.device) else {
        return Ok(Err(SignInFailure::BadRequest(BAD_CODE)));
    };
    user_code_found(app, ip).await?;
    Ok(Ok(Found {
        device,
        user_code_hash,
        display: oauth::display_user_code(&code),
    }))
}

/// Takes one user-code try of `ip` (`Err(seconds to wait)`: none left): in the counters
/// the instances of a PostgreSQL database share, or in this server's memory on SQLite.
async fn try_user_code(app: &App, ip: IpAddr) -> Result<Result<(), u64>, StoreError> {
    match &app.shared_failures {
        Some(shared) => shared.try_user_code(&app.store, ip).await,
        None => Ok(app.devices.try_user_code(ip)),
    }
}

/// Gives back the try [`try_user_code`] took, where it took it: the code was right.
async fn user_code_found(app: &App, ip: IpAddr) -> Result<(), StoreError> {
    match &app.shared_failures {
        Some(shared) => shared.user_code_found(&app.store, ip).await,
        None => {
            app.devices.user_code_found(ip);
            Ok(())
        }
    }
}

fn page_error(error: ParamError) -> ApiError {
    ApiError::bad_params(Family::Page, error)
}

/// Adds `Retry-After` to a page answering a lockout.
fn refused(mut page: Response<Body>, failure: SignInFailure) -> Response<Body> {
    if let Some(seconds) = failure.retry_after() {
        http::set_header(&mut page, "retry-after", &seconds);
    }
    page
}

fn enter_code_page(
    status: StatusCode,
    brand: &PageBrand,
    failure: Option<SignInFailure>,
) -> Response<Body> {
    let body = "<p class=\"lead\">Enter the code shown on your device.</p>
<form method=\"get\" action=\"/device\">
<label for=\"user_code\">Code</label>
<input id=\"user_code\" name=\"user_code\" autocomplete=\"off\" autocapitalize=\"characters\" spellcheck=\"false\" required autofocus>
<button id=\"continue\" type=\"submit\">Continue</button>
</form>";
    page(status, brand, failure, body)
}

fn confirm_page(
    app: &App,
    headers: &HeaderMap,
    status: StatusCode,
    brand: &PageBrand,
    found: &Found,
    email: &str,
    failure: Option<SignInFailure>,
) -> Response<Body> {
    let csrf = app.csrf.issue(headers);
    let scopes: String = match found.device.scope.as_deref() {
        Some(scope) => scope
            .split_whitespace()
            .map(|name| format!("<li>{}</li>", escape(name)))
            .collect(),
        None => "<li>no particular scope</li>".to_owned(),
    };
    let body = format!(
        "<p class=\"lead\"><strong id=\"client-name\">{client}</strong> asks to connect to your account.</p>
<p>Code: <strong id=\"user-code\">{code}</strong></p>
<p>It asks for:</p>
<ul id=\"scopes\">{scopes}</ul>
<form method=\"post\" action=\"/device\" autocomplete=\"on\">
<input type=\"hidden\" name=\"user_code\" value=\"{code}\">
<input type=\"hidden\" name=\"csrf_token\" value=\"{csrf_token}\">
<label for=\"email\">Email</label>
<input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"username\" autocapitalize=\"none\" spellcheck=\"false\" required value=\"{email}\">
<label for=\"password\">Password</label>
<input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>
<button id=\"approve\" type=\"submit\" name=\"action\" value=\"approve\">Allow</button>
<button id=\"deny\" class=\"secondary\" type=\"submit\" name=\"action\" value=\"deny\">Deny</button>
</form>
<p class=\"fineprint\">Only allow this if you started it on your own device. You can revoke its access at any time.</p>",
        client = escape(&found.device.client_name),
        code = escape(&found.display),
        csrf_token = escape(&csrf.form_token),
        email = escape(email),
    );
    let mut response = page(status, brand, failure, &body);
    http::set_header(&mut response, "set-cookie", &csrf.set_cookie);
    response
}

fn done_page(brand: &PageBrand, approved: bool) -> Response<Body> {
    let body = if approved {
        "<p id=\"done\" class=\"lead\">Your device is connected. You can return to it now.</p>"
    } else {
        "<p id=\"done\" class=\"lead\">Denied. The device was not connected.</p>"
    };
    page(StatusCode::OK, brand, None, body)
}

/// The branded page around `body` (already escaped where it echoes input).
fn page(
    status: StatusCode,
    brand: &PageBrand,
    failure: Option<SignInFailure>,
    body: &str,
) -> Response<Body> {
    let error_block = page::error_block(failure.map(|f| f.message(true)));
    page::branded(
        status,
        "Connect a device",
        &format!("{error_block}\n{body}"),
        brand,
    )
}
