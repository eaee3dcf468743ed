//! `POST /api/oauth_login`: the GroveStreams headless sign-in. JSON in, GroveStreams'
//! JSON out; it issues the same authorization code the browser flow does.

use std::net::SocketAddr;

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde::Serialize;

use super::attempts;
use crate::app::App;
use crate::error::{ApiError, Family, SignInFailure};
use crate::http::{self, Body, ParamError};
use crate::oauth::AttemptReason;
use crate::secret::Secret;
use crate::signin::{self, SignIn, UntrustedRequest};

/// The success answer, with the member names and order GroveStreams clients read.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LoginSucceeded<'a> {
    success: bool,
    oauth_code: &'a str,
    oauth_state: Option<&'a str>,
    message: &'static str,
    oauth_redirect_uri: &'a str,
}

pub async fn login(
    app: &App,
    req: Request<Incoming>,
    remote: SocketAddr,
) -> Result<Response<Body>, ApiError> {
    let (_, body) = http::read_body(req).await.map_err(bad_params)?;
    let params = http::parse_json_strings(&body).map_err(bad_params)?;
    let email = params
        .non_empty("email")
        .ok_or(bad_request("email is required."))?
        .trim()
        .to_owned();
    let password = params
        .non_empty("password")
        .map(Secret::new)
        .ok_or(bad_request("password is required."))?;
    let (client, redirect_uri) = signin::identify_client(app, &params).await?.map_err(|e| {
        attempts::untrusted(app, &params, e);
        untrusted(e)
    })?;
    let client_id = client.client_id.clone();
    let request = signin::check_request(client, redirect_uri, &params).map_err(|e| {
        attempts::authorize_refused(app, &client_id, AttemptReason::of_authorize(e.refusal));
        bad_request(e.description)
    })?;
    let ip = remote.ip();
    match signin::sign_in(app, &email, &password, ip, &client_id).await? {
        SignIn::Succeeded { user_id, email } => {
            let logged = attempts::code_issued(&client_id);
            let code = signin::issue_code(app, &request, user_id, email, ip, logged).await?;
            let answer = LoginSucceeded {
                success: true,
                oauth_code: &code,
                oauth_state: request.state.as_deref(),
                message: "Login succeeded.",
                oauth_redirect_uri: request.redirect_uri.as_str(),
            };
            let mut response = http::json_bytes(
                StatusCode::OK,
                serde_json::to_vec(&answer).unwrap_or_default(),
            );
            http::no_store(&mut response);
            Ok(response)
        }
        SignIn::Refused(failure) => {
            attempts::sign_in_refused(app, &client_id, attempts::AUTHORIZE, &failure);
            Err(ApiError::Login(failure))
        }
        SignIn::Busy => Err(ApiError::Busy),
    }
}

/// The 400 for a request whose client or redirect URI cannot be trusted.
fn untrusted(e: UntrustedRequest) -> ApiError {
    match e {
        UntrustedRequest::MissingClientId => bad_request("client_id is required."),
        UntrustedRequest::UnknownClient => bad_request("Unknown client_id."),
        UntrustedRequest::RedirectUriNotRegistered => {
            bad_request("redirect_uri is not registered for this client.")
        }
        UntrustedRequest::RedirectUriRequired => {
            bad_request("redirect_uri is required: this client has several registered.")
        }
    }
}

fn bad_request(message: &'static str) -> ApiError {
    ApiError::Login(SignInFailure::BadRequest(message))
}

fn bad_params(error: ParamError) -> ApiError {
    ApiError::bad_params(Family::Login, error)
}
