//! The consents users gave third-party clients: read, stored (the scope after
//! `oauth::consented_scope`), forgotten when the user revokes the app.

use rusqlite::{params, Connection, OptionalExtension};

use super::{now, StoreError};

/// The scope `user_id` consented to for `client_id`, if they did.
pub fn find(
    conn: &Connection,
    user_id: &str,
    client_id: &str,
) -> Result<Option<String>, StoreError> {
    let scope = conn
        .prepare_cached("SELECT scope FROM consents WHERE user_id = ?1 AND client_id = ?2")?
        .query_row(params![user_id, client_id], |r| r.get(0))
        .optional()?;
    Ok(scope)
}

/// Stores (or replaces) the consent of `user_id` to `client_id` for `scope`.
pub fn store(
    conn: &Connection,
    user_id: &str,
    client_id: &str,
    scope: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO consents (user_id, client_id, scope, granted_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (user_id, client_id) DO UPDATE SET scope = excluded.scope,
             granted_at = excluded.granted_at",
    )?
    .execute(params![user_id, client_id, scope, now()])?;
    Ok(())
}

/// Forgets the consent of `user_id` to `client_id`; whether there was one.
pub fn forget(conn: &Connection, user_id: &str, client_id: &str) -> Result<bool, StoreError> {
    let deleted = conn
        .prepare_cached("DELETE FROM consents WHERE user_id = ?1 AND client_id = ?2")?
        .execute(params![user_id, client_id])?;
    Ok(deleted > 0)
}
