//! What the user's own account page reads and changes: the applications holding live
//! grants for them, and revoking one application's grants.

use rusqlite::{params, Connection};
use serde::Serialize;

use super::{audit, consents, grants, iso8601, StoreError};

/// An application that holds access for the user.
#[derive(Debug, Clone, Serialize)]
pub struct App {
    pub client_id: String,
    pub name: String,
    /// When the user first granted it access (of the grants still live).
    pub since: String,
}

/// The applications with a live (unrevoked) grant for `user_id`, by name.
pub fn apps(conn: &Connection, user_id: &str) -> Result<Vec<App>, StoreError> {
    let apps = conn
        .prepare_cached(
            "SELECT c.id, c.name, min(g.created_at) FROM grants g JOIN clients c ON c.id = g.client_id
             WHERE g.user_id = ?1 AND g.revoked_at IS NULL
             GROUP BY c.id ORDER BY c.name, c.id",
        )?
        .query_map([user_id], |r| {
            Ok(App {
                client_id: r.get(0)?,
                name: r.get(1)?,
                since: iso8601(r.get(2)?),
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(apps)
}

/// Revokes every live grant of `user_id` for `client_id` (their tokens stop working) and
/// forgets the user's consent to it, with an audit entry naming the user. Returns how many
/// grants were revoked.
pub fn revoke_app(
    conn: &Connection,
    user_id: &str,
    user_email: &str,
    client_id: &str,
) -> Result<usize, StoreError> {
    let ids: Vec<i64> = conn
        .prepare_cached(
            "SELECT id FROM grants WHERE user_id = ?1 AND client_id = ?2 AND revoked_at IS NULL",
        )?
        .query_map(params![user_id, client_id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for id in &ids {
        grants::revoke_grant(conn, *id)?;
    }
    let forgotten = consents::forget(conn, user_id, client_id)?;
    if !ids.is_empty() || forgotten {
        audit::record(
            conn,
            &audit::Event {
                event: "account_revoke_app",
                user_email: Some(user_email),
                client_id: Some(client_id),
                remote_addr: None,
                detail: None,
            },
        )?;
    }
    Ok(ids.len())
}
