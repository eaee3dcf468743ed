//! The link doctor's attempt log: the last token-endpoint, authorization and device-page
//! attempts of each client, for `oauthd client log`. Rows hold reason codes and redirect
//! URIs only (never a secret, code or token), and each client keeps at most [`KEEP_PER_CLIENT`], pruned on insert,
//! so a hammering client cannot grow the file. Attempts naming no registered client are
//! not stored at all: their number would be unbounded.

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::{iso8601, now, StoreError};
use crate::oauth::{TokenFacts, RETENTION};

/// Rows kept per client; older ones are deleted as new ones arrive.
pub const KEEP_PER_CLIENT: i64 = 200;

/// One attempt to record. The endpoint decides the reason; this only stores it.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub client_id: String,
    pub endpoint: &'static str,
    pub grant_type: Option<&'static str>,
    pub outcome: &'static str,
    pub reason: &'static str,
    /// The redirect URI the authorization was made for (on a mismatch at the token
    /// endpoint), or the client's registered ones, space-separated (at authorization).
    pub registered: Option<String>,
    /// The redirect URI presented, already cut short (on a mismatch).
    pub presented: Option<String>,
}

/// One logged attempt, as `client log` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub at: String,
    pub endpoint: String,
    pub grant_type: Option<String>,
    pub outcome: String,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registered_redirect_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presented_redirect_uri: Option<String>,
}

/// Stores `attempt` if its client exists, then drops that client's rows beyond
/// [`KEEP_PER_CLIENT`]. Runs inside the caller's (writer's) transaction.
pub fn record(conn: &Connection, attempt: &Attempt) -> Result<(), StoreError> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO client_attempts
                 (client_id, at, endpoint, grant_type, outcome, reason, registered, presented)
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8 WHERE EXISTS (SELECT 1 FROM clients WHERE id = ?1)",
        )?
        .execute(params![
            attempt.client_id,
            now(),
            attempt.endpoint,
            attempt.grant_type,
            attempt.outcome,
            attempt.reason,
            attempt.registered,
            attempt.presented,
        ])?;
    if inserted > 0 {
        conn.prepare_cached(
            "DELETE FROM client_attempts WHERE client_id = ?1 AND id <= (
                 SELECT id FROM client_attempts WHERE client_id = ?1
                 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
        )?
        .execute(params![attempt.client_id, KEEP_PER_CLIENT])?;
    }
    Ok(())
}

/// The client's attempts at or after `since`, newest first, at most `limit`.
pub fn recent(
    conn: &Connection,
    client_id: &str,
    since: Option<i64>,
    limit: Option<i64>,
) -> Result<Vec<Entry>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT at, endpoint, grant_type, outcome, reason, registered, presented FROM client_attempts
         WHERE client_id = ?1 AND at >= ?2 ORDER BY id DESC LIMIT ?3",
    )?;
    let rows = statement.query_map(
        params![client_id, since.unwrap_or(i64::MIN), limit.unwrap_or(-1)],
        |row| {
            Ok(Entry {
                at: iso8601(row.get(0)?),
                endpoint: row.get(1)?,
                grant_type: row.get(2)?,
                outcome: row.get(3)?,
                reason: row.get(4)?,
                registered_redirect_uri: row.get(5)?,
                presented_redirect_uri: row.get(6)?,
            })
        },
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Whether the user of grant `grant_id` is disabled (false for no such grant).
pub fn grant_user_disabled(conn: &Connection, grant_id: i64) -> Result<bool, StoreError> {
    let disabled = conn
        .prepare_cached(
            "SELECT u.disabled FROM grants g JOIN users u ON u.id = g.user_id WHERE g.id = ?1",
        )?
        .query_row(params![grant_id], |row| row.get(0))
        .optional()?;
    Ok(disabled.unwrap_or(false))
}

/// Remembers the hashes of the refresh tokens and codes of `user_id`'s unrevoked grants,
/// just before disabling the user revokes (deletes) them, so a client presenting one later
/// is told apart from one presenting garbage. Rows past their token's expiry (by
/// `oauth::RETENTION`) are deleted here: the table holds at most the tokens users held
/// when disabled, each until it would have expired.
pub fn remember_disabled_user_tokens(conn: &Connection, user_id: &str) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM disabled_user_tokens WHERE expires_at < ?1")?
        .execute([RETENTION.expired_by(now())])?;
    conn.prepare_cached(
        "INSERT OR IGNORE INTO disabled_user_tokens (token_hash, client_id, expires_at)
         SELECT r.token_hash, g.client_id, r.expires_at FROM refresh_tokens r
         JOIN grants g ON g.id = r.grant_id
         WHERE g.user_id = ?1 AND g.revoked_at IS NULL
         UNION ALL
         SELECT c.code_hash, g.client_id, c.expires_at FROM authorization_codes c
         JOIN grants g ON g.id = c.grant_id
         WHERE g.user_id = ?1 AND g.revoked_at IS NULL",
    )?
    .execute(params![user_id])?;
    Ok(())
}

/// The facts of `token_hash` (a refresh token's or a code's) if it was held when its user
/// was disabled; whether it would still be live is the rule book's call.
pub fn disabled_user_token(
    conn: &Connection,
    token_hash: &[u8],
) -> Result<Option<TokenFacts>, StoreError> {
    let found = conn
        .prepare_cached("SELECT expires_at FROM disabled_user_tokens WHERE token_hash = ?1")?
        .query_row([token_hash], |row| {
            Ok(TokenFacts {
                expires_at: row.get(0)?,
                grant_revoked: false,
                rotated_out: false,
                user_disabled: false,
            })
        })
        .optional()?;
    Ok(found)
}
