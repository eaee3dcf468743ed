//! The consents users gave third-party clients: read, stored (the scope after
//! `oauth::consented_scope`), forgotten when the user revokes the app.

use super::sql::Db;
use super::{now, StoreError};

/// The scope `user_id` consented to for `client_id`, if they did.
pub fn find(db: &impl Db, user_id: &str, client_id: &str) -> Result<Option<String>, StoreError> {
    db.query_opt(
        "SELECT scope FROM consents WHERE user_id = ?1 AND client_id = ?2",
        &[&user_id, &client_id],
        |r| r.get(0),
    )
}

/// The scope `user_id` consented to for `client_id` (empty when none yet), read to be
/// widened and stored inside the caller's write job: the row is made to exist (empty,
/// which widens like no consent) and then locked, so of concurrent widenings each reads
/// what the last one stored; with no row to lock, two first consents would both read
/// nothing and the later store would drop the other's scope.
pub fn find_for_widening(
    db: &impl Db,
    user_id: &str,
    client_id: &str,
) -> Result<String, StoreError> {
    db.execute(
        "INSERT INTO consents (user_id, client_id, scope, granted_at) VALUES (?1, ?2, '', ?3)
         ON CONFLICT (user_id, client_id) DO NOTHING",
        &[&user_id, &client_id, &now()],
    )?;
    db.query_one(
        &format!(
            "SELECT scope FROM consents WHERE user_id = ?1 AND client_id = ?2{}",
            db.for_update()
        ),
        &[&user_id, &client_id],
        |r| r.get(0),
    )
}

/// Stores (or replaces) the consent of `user_id` to `client_id` for `scope`.
pub fn store(db: &impl Db, user_id: &str, client_id: &str, scope: &str) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO consents (user_id, client_id, scope, granted_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (user_id, client_id) DO UPDATE SET scope = excluded.scope,
             granted_at = excluded.granted_at",
        &[&user_id, &client_id, &scope, &now()],
    )?;
    Ok(())
}

/// Forgets the consent of `user_id` to `client_id`; whether there was one.
pub fn forget(db: &impl Db, user_id: &str, client_id: &str) -> Result<bool, StoreError> {
    let deleted = db.execute(
        "DELETE FROM consents WHERE user_id = ?1 AND client_id = ?2",
        &[&user_id, &client_id],
    )?;
    Ok(deleted > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_backends::{on_both_backends, seed_user_and_client};

    fn consent_verbs(db: &impl Db) {
        seed_user_and_client(db);
        assert_eq!(find(db, "u", "c").expect("find"), None);
        store(db, "u", "c", "openid").expect("store");
        store(db, "u", "c", "openid email").expect("replace");
        assert_eq!(
            find(db, "u", "c").expect("find").as_deref(),
            Some("openid email")
        );
        assert_eq!(find(db, "u", "other").expect("find"), None);
        assert!(forget(db, "u", "c").expect("forget"));
        assert!(!forget(db, "u", "c").expect("forget again"));
        assert_eq!(find(db, "u", "c").expect("find"), None);
    }
    on_both_backends!(consent_verbs);

    fn widening_reads_the_stored_scope_or_empty(db: &impl Db) {
        seed_user_and_client(db);
        assert_eq!(find_for_widening(db, "u", "c").expect("first"), "");
        store(db, "u", "c", "openid s1").expect("store");
        assert_eq!(find_for_widening(db, "u", "c").expect("again"), "openid s1");
        assert_eq!(
            find(db, "u", "c").expect("find").as_deref(),
            Some("openid s1")
        );
    }
    on_both_backends!(widening_reads_the_stored_scope_or_empty);
}
