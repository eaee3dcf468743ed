//! What the user's own account page reads and changes: the applications holding live
//! grants for them, and revoking one application's grants.

use serde::Serialize;

use super::sql::Db;
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
pub fn apps(db: &impl Db, user_id: &str) -> Result<Vec<App>, StoreError> {
    db.query_all(
        "SELECT c.id, c.name, min(g.created_at) FROM grants g JOIN clients c ON c.id = g.client_id
         WHERE g.user_id = ?1 AND g.revoked_at IS NULL
         GROUP BY c.id ORDER BY c.name, c.id",
        &[&user_id],
        |r| {
            Ok(App {
                client_id: r.get(0)?,
                name: r.get(1)?,
                since: iso8601(r.get(2)?),
            })
        },
    )
}

/// Revokes every live grant of `user_id` for `client_id` (their tokens stop working) and
/// forgets the user's consent to it, with an audit entry naming the user. Returns how many
/// grants were revoked.
pub fn revoke_app(
    conn: &impl Db,
    user_id: &str,
    user_email: &str,
    client_id: &str,
) -> Result<usize, StoreError> {
    let ids: Vec<i64> = conn.query_all(
        "SELECT id FROM grants WHERE user_id = ?1 AND client_id = ?2 AND revoked_at IS NULL",
        &[&user_id, &client_id],
        |r| r.get(0),
    )?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_backends::{on_both_backends, seed_user_and_client};

    fn account_apps(db: &impl Db) {
        seed_user_and_client(db);
        db.execute(
            "INSERT INTO clients (id, name, is_public, created_at) VALUES ('b', 'B', 1, 0)",
            &[],
        )
        .expect("client b");
        for (id, client, at, revoked) in [
            (1i64, "c", 30i64, None),
            (2, "c", 20, None),
            (3, "b", 10, Some(40i64)),
            (4, "b", 50, None),
        ] {
            db.execute(
                "INSERT INTO grants (id, user_id, client_id, created_at, revoked_at)
                 VALUES (?1, 'u', ?2, ?3, ?4)",
                &[&id, &client, &at, &revoked],
            )
            .expect("grant");
        }
        let listed: Vec<_> = apps(db, "u")
            .expect("apps")
            .into_iter()
            .map(|a| (a.client_id, a.name, a.since))
            .collect();
        assert_eq!(
            listed,
            [
                ("b".into(), "B".into(), iso8601(50)),
                ("c".into(), "C".into(), iso8601(20)),
            ],
            "by name, since the earliest live grant"
        );
        assert!(apps(db, "nobody").expect("apps").is_empty());
    }
    on_both_backends!(account_apps);
}
