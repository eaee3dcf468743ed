//! The audit trail: who did what, from where, when. It records events, never secrets:
//! no password, client secret, code or token ever reaches this table.

use rusqlite::{params, Connection};
use serde::Serialize;

use super::{iso8601, now, StoreError};

/// One event to record. `event` is a short stable name such as `login_ok`.
#[derive(Debug, Default, Clone)]
pub struct Event<'a> {
    pub event: &'a str,
    pub user_email: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub remote_addr: Option<&'a str>,
    pub detail: Option<&'a str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub at: String,
    pub event: String,
    pub user_email: Option<String>,
    pub client_id: Option<String>,
    pub remote_addr: Option<String>,
    pub detail: Option<String>,
}

/// Which entries `audit` shows.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub user_email: Option<String>,
    pub client_id: Option<String>,
    pub since: Option<i64>,
    pub limit: Option<i64>,
}

/// Appends an event. Call it inside the transaction of the change it describes, so the
/// trail and the change commit together.
pub fn record(conn: &Connection, event: &Event<'_>) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO audit_log (at, event, user_email, client_id, remote_addr, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    stmt.execute(params![
        now(),
        event.event,
        event.user_email,
        event.client_id,
        event.remote_addr,
        event.detail
    ])?;
    Ok(())
}

/// Entries matching `filter`, oldest first.
pub fn query(conn: &Connection, filter: &Filter) -> Result<Vec<Entry>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT at, event, user_email, client_id, remote_addr, detail FROM (
             SELECT * FROM audit_log
             WHERE (?1 IS NULL OR user_email = ?1 COLLATE NOCASE)
               AND (?2 IS NULL OR client_id = ?2)
               AND (?3 IS NULL OR at >= ?3)
             ORDER BY id DESC LIMIT ?4
         ) ORDER BY at, id",
    )?;
    let entries = stmt
        .query_map(
            params![
                filter.user_email,
                filter.client_id,
                filter.since,
                filter.limit.unwrap_or(-1)
            ],
            |r| {
                Ok(Entry {
                    at: iso8601(r.get(0)?),
                    event: r.get(1)?,
                    user_email: r.get(2)?,
                    client_id: r.get(3)?,
                    remote_addr: r.get(4)?,
                    detail: r.get(5)?,
                })
            },
        )?
        .collect::<Result<_, _>>()?;
    Ok(entries)
}
