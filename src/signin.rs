//! What the sign-in page and `/api/oauth_login` share: checking an authorization request
//! against its client, signing a user in (throttled, timing-safe), and issuing the code.
//! The two front ends differ only in how they read parameters and report errors.

use std::net::IpAddr;

use crate::app::App;
use crate::error::SignInFailure;
use crate::http::Params;
use crate::oauth::{self, AuthorizeRefusal, PkceMethod, RedirectUri};
use crate::password::Verdict;
use crate::secret::{self, Secret};
use crate::store::{self, client_log, clients::Client, grants, StoreError};
use crate::throttle::Refusal;

/// A checked authorization request: the client exists and the redirect URI is one of its
/// own, so errors from here on may be sent to that URI.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    pub client: Client,
    pub redirect_uri: RedirectUri,
    pub state: Option<String>,
    pub scope: Option<String>,
    pub pkce: Option<(String, PkceMethod)>,
    /// OpenID Connect `prompt` and `max_age`: whether the browser's session may be used.
    pub prompt: oauth::Prompt,
    pub max_age: Option<i64>,
    /// OpenID Connect: returned in the id_token, bound to the code.
    pub nonce: Option<String>,
}

/// A request that cannot be trusted to redirect: shown as an error page (browser) or a
/// 400 (headless). Never a redirect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UntrustedRequest {
    MissingClientId,
    UnknownClient,
    RedirectUriNotRegistered,
    /// No redirect_uri sent, and the client has several registered.
    RedirectUriRequired,
}

impl UntrustedRequest {
    pub fn message(self) -> &'static str {
        match self {
            UntrustedRequest::MissingClientId => {
                "The request names no client (client_id is missing)."
            }
            UntrustedRequest::UnknownClient => {
                "The application that sent you here is not registered (unknown client_id)."
            }
            UntrustedRequest::RedirectUriNotRegistered => {
                "The application's redirect_uri is not registered for it."
            }
            UntrustedRequest::RedirectUriRequired => {
                "The request names no redirect_uri, and the application has several registered."
            }
        }
    }
}

/// An error that can be reported to the (trusted) redirect URI (RFC 6749 §4.1.2.1):
/// `refusal.error()` and the description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedirectableError {
    pub refusal: AuthorizeRefusal,
    pub description: &'static str,
}

impl RedirectableError {
    fn new(refusal: AuthorizeRefusal, description: &'static str) -> Self {
        RedirectableError {
            refusal,
            description,
        }
    }
}

/// Finds the client and its redirect URI; the first step of both front ends. The outer
/// `Result` is for storage failures (503), the inner one for untrusted requests.
pub async fn identify_client(
    app: &App,
    params: &Params,
) -> Result<Result<(Client, RedirectUri), UntrustedRequest>, StoreError> {
    let Some(client_id) = params.non_empty("client_id").map(str::to_owned) else {
        return Ok(Err(UntrustedRequest::MissingClientId));
    };
    let found = app.store.find_client(client_id).await?;
    let Some(client) = found else {
        return Ok(Err(UntrustedRequest::UnknownClient));
    };
    let requested = params.non_empty("redirect_uri");
    match oauth::select_redirect_uri(&client.redirect_uris, requested) {
        Some(redirect_uri) => Ok(Ok((client, redirect_uri))),
        None if requested.is_none() => Ok(Err(UntrustedRequest::RedirectUriRequired)),
        None => Ok(Err(UntrustedRequest::RedirectUriNotRegistered)),
    }
}

/// Checks the rest of the request once client and redirect URI are trusted.
pub fn check_request(
    client: Client,
    redirect_uri: RedirectUri,
    params: &Params,
) -> Result<AuthorizationRequest, RedirectableError> {
    if oauth::may_use_grant(
        &client.grant_types,
        client.public,
        oauth::GrantKind::AuthorizationCode,
    )
    .is_err()
    {
        return Err(RedirectableError::new(
            AuthorizeRefusal::UnauthorizedClient,
            "the client is not registered for the authorization_code grant",
        ));
    }
    match params.non_empty("response_type") {
        Some("code") => {}
        None => {
            return Err(RedirectableError::new(
                AuthorizeRefusal::ResponseTypeMissing,
                "response_type is required",
            ))
        }
        Some(_) => {
            return Err(RedirectableError::new(
                AuthorizeRefusal::ResponseTypeUnsupported,
                "only response_type=code is supported",
            ))
        }
    }
    let pkce = match params.non_empty("code_challenge") {
        Some(challenge) => {
            let method = PkceMethod::parse(params.non_empty("code_challenge_method")).ok_or(
                RedirectableError::new(
                    AuthorizeRefusal::PkceMethodInvalid,
                    "code_challenge_method must be S256 or plain",
                ),
            )?;
            if !oauth::is_valid_pkce_string(challenge) {
                return Err(RedirectableError::new(
                    AuthorizeRefusal::PkceChallengeInvalid,
                    "code_challenge must be 43-128 characters of [A-Za-z0-9-._~]",
                ));
            }
            Some((challenge.to_owned(), method))
        }
        None if params.non_empty("code_challenge_method").is_some() => {
            return Err(RedirectableError::new(
                AuthorizeRefusal::PkceMethodWithoutChallenge,
                "code_challenge_method given without code_challenge",
            ))
        }
        None => None,
    };
    if pkce.is_none() && client.require_pkce {
        return Err(RedirectableError::new(
            AuthorizeRefusal::PkceRequired,
            "this client requires PKCE (code_challenge)",
        ));
    }
    let invalid = |refusal| move |description| RedirectableError::new(refusal, description);
    let prompt = oauth::parse_prompt(params.non_empty("prompt"))
        .map_err(invalid(AuthorizeRefusal::PromptInvalid))?;
    let max_age = oauth::parse_max_age(params.non_empty("max_age"))
        .map_err(invalid(AuthorizeRefusal::MaxAgeInvalid))?;
    let scope = params.non_empty("scope");
    if !oauth::scope_allowed(client.allowed_scopes.as_deref(), scope) {
        return Err(RedirectableError::new(
            AuthorizeRefusal::ScopeNotAllowed,
            "the scope names one this client may not request",
        ));
    }
    Ok(AuthorizationRequest {
        client,
        redirect_uri,
        state: params.non_empty("state").map(str::to_owned),
        scope: scope.map(str::to_owned),
        pkce,
        prompt,
        max_age,
        nonce: params.non_empty("nonce").map(str::to_owned),
    })
}

/// The outcome of a sign-in attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignIn {
    Succeeded {
        user_id: String,
        email: String,
    },
    /// Wrong credentials, a disabled account or a lockout; each front end answers it.
    Refused(SignInFailure),
    /// Too many sign-ins are already waiting for password hashing.
    Busy,
}

/// Verifies email and password. Admitted per account and per IP before any hashing
/// (atomic failure budgets and fair shares of the hashing pool, see `throttle`); an
/// unknown email costs the same PBKDF2 work as a known one; failures are delayed and
/// audited; a hash with too few iterations is upgraded. Counted in the metrics.
pub async fn sign_in(
    app: &App,
    email: &str,
    password: &Secret,
    ip: IpAddr,
    client_id: &str,
) -> Result<SignIn, StoreError> {
    let outcome = check_credentials(app, email, password, ip, client_id).await;
    app.metrics.login(metric_label(&outcome));
    outcome
}

/// The fixed name of a sign-in outcome in `oauthd_logins_total{outcome}`.
fn metric_label(outcome: &Result<SignIn, StoreError>) -> &'static str {
    match outcome {
        Ok(SignIn::Succeeded { .. }) => "success",
        Ok(SignIn::Refused(SignInFailure::WrongCredentials)) => "wrong_credentials",
        Ok(SignIn::Refused(SignInFailure::Disabled)) => "disabled",
        Ok(SignIn::Refused(SignInFailure::Throttled { .. })) => "throttled",
        Ok(SignIn::Refused(_)) => "refused",
        Ok(SignIn::Busy) => "busy",
        Err(_) => "error",
    }
}

async fn check_credentials(
    app: &App,
    email: &str,
    password: &Secret,
    ip: IpAddr,
    client_id: &str,
) -> Result<SignIn, StoreError> {
    let attempt = match app.throttle.admit(email, ip).await {
        Ok(attempt) => attempt,
        Err(refusal) => return Ok(refused(app, email, client_id, ip, refusal).await),
    };
    if let Some(shared) = &app.shared_failures {
        match shared.check(&app.store, email, ip).await {
            Ok(None) => {}
            Ok(Some(refusal)) => {
                attempt.abandoned();
                return Ok(refused(app, email, client_id, ip, refusal).await);
            }
            Err(e) => {
                attempt.abandoned();
                return Err(e);
            }
        }
    }
    let lookup_email = email.to_owned();
    let credentials = match app
        .store
        .read(move |conn| store::users::credentials_by_email(conn, &lookup_email))
        .await
    {
        Ok(credentials) => credentials,
        Err(e) => {
            attempt.abandoned();
            return Err(e);
        }
    };
    let stored_hash = credentials.as_ref().map(|c| c.password_hash.clone());
    let Ok(verdict) = app
        .hasher
        .verify(password.expose().to_owned(), stored_hash)
        .await
    else {
        attempt.abandoned();
        return Ok(SignIn::Busy);
    };
    let Some(user) = credentials.filter(|_| verdict != Verdict::Wrong) else {
        let mut delay = attempt.failed();
        if let Some(shared) = &app.shared_failures {
            delay = delay.max(shared.record(&app.store, email, ip).await?);
        }
        audit_login_failure(app, email, client_id, ip, "wrong email or password").await;
        tokio::time::sleep(delay).await;
        return Ok(SignIn::Refused(SignInFailure::WrongCredentials));
    };
    attempt.succeeded();
    if user.disabled {
        audit_login_failure(app, &user.email, client_id, ip, "account disabled").await;
        return Ok(SignIn::Refused(SignInFailure::Disabled));
    }
    if verdict == Verdict::CorrectNeedsRehash {
        if let Ok(new_hash) = app.hasher.hash(password.expose().to_owned()).await {
            let (user_id, verified) = (user.id.clone(), user.password_hash.clone());
            app.store
                .write(move |conn| store::users::rehash(conn, &user_id, &verified, &new_hash))
                .await?;
        }
    }
    Ok(SignIn::Succeeded {
        user_id: user.id,
        email: user.email,
    })
}

/// The answer to an attempt refused before any hashing; the first refusal of a lockout
/// is audited.
async fn refused(app: &App, email: &str, client_id: &str, ip: IpAddr, refusal: Refusal) -> SignIn {
    let retry_after_secs = match refusal {
        Refusal::Locked {
            retry_after_secs,
            first_refusal,
        } => {
            if first_refusal {
                audit_login_failure(app, email, client_id, ip, "throttled").await;
            }
            retry_after_secs
        }
        Refusal::QueueFull { retry_after_secs } => retry_after_secs,
    };
    SignIn::Refused(SignInFailure::Throttled { retry_after_secs })
}

/// Records a failed sign-in. The submitted email is stored only when it names an
/// account (as that account's stored email); an unknown one may be a password typed into
/// the wrong field, so only its pseudonym (a short keyed hash of its folded key) is kept,
/// and repeats of it stay correlatable.
async fn audit_login_failure(
    app: &App,
    email: &str,
    client_id: &str,
    ip: IpAddr,
    detail: &'static str,
) {
    let (email, client_id, ip) = (email.to_owned(), client_id.to_owned(), ip.to_string());
    let recorded = app
        .store
        .write(move |conn| {
            let accounts = store::users::emails_with_key(conn, &email)?;
            let (user_email, detail) = match accounts.as_slice() {
                [stored] => (Some(stored.as_str()), detail.to_owned()),
                [] => {
                    let pseudonym = store::audit::pseudonym(conn, &crate::email::key(&email))?;
                    (None, format!("{detail}; unknown email {pseudonym}"))
                }
                several => {
                    tracing::warn!(
                        accounts = several.len(),
                        "sign-in refused: its email is shared by several accounts; see oauthd check"
                    );
                    let detail = format!(
                        "{detail}; email shared by {} accounts (see oauthd check)",
                        several.len()
                    );
                    (Some(email.as_str()), detail)
                }
            };
            store::audit::record(
                conn,
                &store::audit::Event {
                    event: "login_failed",
                    user_email,
                    client_id: Some(&client_id),
                    remote_addr: Some(&ip),
                    detail: Some(&detail),
                },
            )
        })
        .await;
    if let Err(e) = recorded {
        tracing::error!(error = %e, "could not record a failed login");
    }
}

/// Issues an authorization code for a signed-in user (grant, code, audit entry and the
/// client log's `logged` success in one committed transaction) and returns the code's
/// clear text.
pub async fn issue_code(
    app: &App,
    request: &AuthorizationRequest,
    user_id: String,
    email: String,
    ip: IpAddr,
    logged: client_log::Attempt,
) -> Result<String, StoreError> {
    let code = secret::new_token();
    let code_hash = secret::sha256(&code);
    let client_id = request.client.client_id.clone();
    let scope = request.scope.clone();
    let redirect_uri = request.redirect_uri.as_str().to_owned();
    let pkce = request.pkce.clone();
    let nonce = request.nonce.clone();
    let ttl_secs = app.config.code_ttl_secs;
    app.store
        .write(move |conn| {
            grants::issue_code(
                conn,
                &grants::NewCode {
                    code_hash,
                    user_id: &user_id,
                    client_id: &client_id,
                    scope: scope.as_deref(),
                    redirect_uri: &redirect_uri,
                    code_challenge: pkce.as_ref().map(|(c, _)| c.as_str()),
                    code_challenge_method: pkce.as_ref().map(|(_, m)| m.as_str()),
                    ttl_secs,
                    nonce: nonce.as_deref(),
                    auth_time: store::now(),
                },
                grants::Origin {
                    remote_addr: &ip.to_string(),
                },
                &email,
            )?;
            client_log::record(conn, &logged)
        })
        .await?;
    Ok(code)
}
