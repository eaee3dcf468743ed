//! The link doctor's attempt log: the last token-endpoint attempts of each client, for
//! `oauthd client log`. Rows hold reason codes and redirect URIs only (never a secret,
//! code or token), and each client keeps at most [`KEEP_PER_CLIENT`], pruned on insert,
//! so a hammering client cannot grow the file. Attempts naming no registered client are
//! not stored at all: their number would be unbounded.

use rusqlite::{params, Connection};
use serde::Serialize;

use super::{iso8601, now, StoreError};

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
    /// The redirect URI the authorization was made for (on a mismatch).
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
