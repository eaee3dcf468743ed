//! Browser sessions (SSO): rows keyed by the SHA-256 of the cookie's id, so the file never
//! holds a usable session. Reads and writes only; whether a session still counts (expiry,
//! idle timeout, `max_age`) is decided in `oauth::prompt`.

use rusqlite::{params, Connection, OptionalExtension};

use super::{now, StoreError};
use crate::oauth::RETENTION;
use crate::secret::SecretHash;

/// A stored session joined with its user, as the authorization page needs it.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub user_id: String,
    pub email: String,
    pub user_disabled: bool,
    pub auth_time: i64,
    pub last_seen: i64,
    pub expires_at: i64,
}

/// Creates a session for a fresh sign-in and deletes `replaced` (the browser's previous
/// session, if any), so a sign-in always yields a new id. Also deletes a few expired rows.
pub fn create(
    conn: &Connection,
    id_hash: &SecretHash,
    user_id: &str,
    ttl_secs: i64,
    replaced: Option<&SecretHash>,
) -> Result<(), StoreError> {
    let at = now();
    conn.prepare_cached(
        "DELETE FROM sessions WHERE id_hash IN
             (SELECT id_hash FROM sessions WHERE expires_at <= ?1 LIMIT 16)",
    )?
    .execute([RETENTION.expired_by(at)])?;
    if let Some(old) = replaced {
        end(conn, old)?;
    }
    conn.prepare_cached(
        "INSERT INTO sessions (id_hash, user_id, auth_time, last_seen, expires_at)
         VALUES (?1, ?2, ?3, ?3, ?4)",
    )?
    .execute(params![id_hash, user_id, at, at.saturating_add(ttl_secs)])?;
    Ok(())
}

/// The session with this id hash, whatever its age (the caller decides whether it counts).
pub fn find(conn: &Connection, id_hash: &SecretHash) -> Result<Option<SessionRow>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT s.user_id, u.email, u.disabled, s.auth_time, s.last_seen, s.expires_at
             FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = ?1",
        )?
        .query_row([id_hash], |r| {
            Ok(SessionRow {
                user_id: r.get(0)?,
                email: r.get(1)?,
                user_disabled: r.get(2)?,
                auth_time: r.get(3)?,
                last_seen: r.get(4)?,
                expires_at: r.get(5)?,
            })
        })
        .optional()?;
    Ok(row)
}

/// Records that the session was used now (called coarsely, for the idle timeout).
pub fn touch(conn: &Connection, id_hash: &SecretHash) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE sessions SET last_seen = ?2 WHERE id_hash = ?1")?
        .execute(params![id_hash, now()])?;
    Ok(())
}

/// Ends one session (logout, or replaced by a new sign-in).
pub fn end(conn: &Connection, id_hash: &SecretHash) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM sessions WHERE id_hash = ?1")?
        .execute([id_hash])?;
    Ok(())
}

/// Ends every session of a user (disabled, or their password changed). Returns how many.
pub fn end_for_user(conn: &Connection, user_id: &str) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached("DELETE FROM sessions WHERE user_id = ?1")?
        .execute([user_id])?)
}
