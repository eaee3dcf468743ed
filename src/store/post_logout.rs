//! The URIs a client registered for RP-initiated logout (`client add
//! --post-logout-redirect-uri`): where oauthd may send a browser after signing it out.

use rusqlite::{params, Connection};

use super::StoreError;

/// Registers `uris` for `client_id`, inside the caller's transaction (with the client).
pub fn insert(conn: &Connection, client_id: &str, uris: &[String]) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "INSERT OR IGNORE INTO client_post_logout_uris (client_id, uri) VALUES (?1, ?2)",
    )?;
    for uri in uris {
        stmt.execute(params![client_id, uri])?;
    }
    Ok(())
}

/// The URIs registered for `client_id` (none for an unknown client).
pub fn list(conn: &Connection, client_id: &str) -> Result<Vec<String>, StoreError> {
    let uris = conn
        .prepare_cached(
            "SELECT uri FROM client_post_logout_uris WHERE client_id = ?1 ORDER BY uri",
        )?
        .query_map([client_id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(uris)
}
