//! Browser sessions (SSO): the session cookie and the async steps around the store. A
//! sign-in on the page starts a session with a new random id (never the one the browser
//! brought, which is deleted: fixation protection); the next authorization request from
//! that browser may skip the form, as `oauth::prompt` decides.
//!
//! The cookie holds 256 random bits; the database holds only their SHA-256. Its name and
//! attributes follow the CSRF cookie's rule: with an https issuer it is `__Host-` prefixed
//! and `Secure`, so a sibling subdomain or a plain-http page cannot plant it.

use hyper::header::HeaderMap;

use crate::app::App;
use crate::http;
use crate::oauth::{self, SessionFacts};
use crate::secret::{self, SecretHash};
use crate::store::{self, sessions::SessionRow, StoreError};

const PLAIN_COOKIE: &str = "oauthd_session";
const HOST_COOKIE: &str = "__Host-oauthd_session";
/// The length of an id this server makes (32 bytes, base64url): others are not looked up.
const ID_LEN: usize = 43;

/// The browser's live-or-not session as stored, with the hash that names it.
pub struct Current {
    pub id_hash: SecretHash,
    pub row: SessionRow,
}

impl Current {
    /// The facts the prompt rules decide over.
    pub fn facts(&self) -> SessionFacts {
        SessionFacts {
            auth_time: self.row.auth_time,
            last_seen: self.row.last_seen,
            expires_at: self.row.expires_at,
            user_disabled: self.row.user_disabled,
        }
    }

    /// Whether the session still signs its user in (not expired, idle or disabled).
    pub fn is_live(&self, app: &App) -> bool {
        oauth::session_is_live(&self.facts(), store::now(), app.config.session_idle_secs)
    }
}

fn secure(app: &App) -> bool {
    app.config.issuer.starts_with("https://")
}

fn cookie_name(app: &App) -> &'static str {
    if secure(app) {
        HOST_COOKIE
    } else {
        PLAIN_COOKIE
    }
}

/// The `Set-Cookie` value carrying `value` for `max_age` seconds (0 deletes it).
fn set_cookie(app: &App, value: &str, max_age: i64) -> String {
    let secure = if secure(app) { "Secure; " } else { "" };
    format!(
        "{}={value}; Path=/; Max-Age={max_age}; {secure}HttpOnly; SameSite=Lax",
        cookie_name(app)
    )
}

/// The hash of the session id the browser sent, if it has the shape of one of ours.
fn presented(app: &App, headers: &HeaderMap) -> Option<SecretHash> {
    http::cookie(headers, cookie_name(app))
        .filter(|id| id.len() == ID_LEN)
        .map(secret::sha256)
}

/// The browser's stored session, whatever its age (the rule book decides if it counts).
pub async fn lookup(app: &App, headers: &HeaderMap) -> Result<Option<Current>, StoreError> {
    let Some(id_hash) = presented(app, headers) else {
        return Ok(None);
    };
    let row = app
        .store
        .read(move |conn| store::sessions::find(conn, &id_hash))
        .await?;
    Ok(row.map(|row| Current { id_hash, row }))
}

/// Records the session's use when its `last_seen` is due (coarsely, not per request).
pub async fn touch_if_due(app: &App, current: &Current) -> Result<(), StoreError> {
    if !oauth::needs_touch(&current.facts(), store::now(), app.config.session_idle_secs) {
        return Ok(());
    }
    let id_hash = current.id_hash;
    app.store
        .write(move |conn| store::sessions::touch(conn, &id_hash))
        .await
}

/// Starts a session for `user_id` after a sign-in with the password, replacing the
/// browser's previous one. Returns the `Set-Cookie` value, or `None` when sessions are
/// off (`--session-ttl 0`).
pub async fn start(
    app: &App,
    headers: &HeaderMap,
    user_id: &str,
) -> Result<Option<String>, StoreError> {
    let ttl = app.config.session_ttl_secs;
    if ttl == 0 {
        return Ok(None);
    }
    let id = secret::new_client_secret();
    let id_hash = secret::sha256(&id);
    let replaced = presented(app, headers);
    let user_id = user_id.to_owned();
    app.store
        .write(move |conn| {
            store::sessions::create(conn, &id_hash, &user_id, ttl, replaced.as_ref())
        })
        .await?;
    Ok(Some(set_cookie(app, &id, ttl)))
}

/// Ends the browser's session, if any, and returns the `Set-Cookie` value that deletes
/// the cookie.
pub async fn end(app: &App, headers: &HeaderMap) -> Result<String, StoreError> {
    if let Some(id_hash) = presented(app, headers) {
        app.store
            .write(move |conn| store::sessions::end(conn, &id_hash))
            .await?;
    }
    Ok(set_cookie(app, "", 0))
}
