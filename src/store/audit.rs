//! The audit trail: who did what, from where, when. It records events, never secrets:
//! no password, client secret, code or token ever reaches this table.

use rusqlite::{params, Connection};
use serde::Serialize;

use super::{iso8601, now, Store, StoreError};

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

/// The remote address recorded for changes made from the command line.
pub const CLI_ADDR: &str = "cli";

/// The audit event of an admin change. It owns its detail, which is often formatted
/// from what the change returned (a count, a name).
#[derive(Debug, Default, Clone)]
pub struct AdminEvent<'a> {
    pub event: &'a str,
    pub user_email: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub detail: Option<String>,
}

/// Runs one admin change and records its audit event (from [`CLI_ADDR`]) in the same
/// transaction, so the trail and the change commit together or not at all.
///
/// `event` describes the change from what it returned, or answers `None` when nothing
/// changed (no such user, not a member): then nothing is recorded.
pub fn admin_change<'a, T>(
    store: &Store,
    change: impl FnOnce(&Connection) -> Result<T, StoreError>,
    event: impl FnOnce(&T) -> Option<AdminEvent<'a>>,
) -> Result<T, StoreError> {
    store.transaction(|tx| {
        let value = change(tx)?;
        if let Some(described) = event(&value) {
            record(
                tx,
                &Event {
                    event: described.event,
                    user_email: described.user_email,
                    client_id: described.client_id,
                    remote_addr: Some(CLI_ADDR),
                    detail: described.detail.as_deref(),
                },
            )?;
        }
        Ok(value)
    })
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
