//! The URIs a client registered for RP-initiated logout (`client add
//! --post-logout-redirect-uri`): where oauthd may send a browser after signing it out.

use super::sql::Db;
use super::StoreError;

/// Registers `uris` for `client_id`, inside the caller's transaction (with the client).
/// A URI given twice is registered once.
pub fn insert(db: &impl Db, client_id: &str, uris: &[String]) -> Result<(), StoreError> {
    for uri in uris {
        db.execute(
            "INSERT INTO client_post_logout_uris (client_id, uri) VALUES (?1, ?2)
             ON CONFLICT DO NOTHING",
            &[&client_id, uri],
        )?;
    }
    Ok(())
}

/// The URIs registered for `client_id` (none for an unknown client).
pub fn list(db: &impl Db, client_id: &str) -> Result<Vec<String>, StoreError> {
    db.query_all(
        "SELECT uri FROM client_post_logout_uris WHERE client_id = ?1 ORDER BY uri",
        &[&client_id],
        |r| r.get(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_backends::{on_both_backends, seed_user_and_client};

    fn post_logout_verbs(db: &impl Db) {
        seed_user_and_client(db);
        let uris = [
            "https://b.example/out".to_owned(),
            "https://a.example/out".to_owned(),
        ];
        insert(db, "c", &uris).expect("insert");
        insert(db, "c", &uris[..1]).expect("insert again");
        assert_eq!(
            list(db, "c").expect("list"),
            ["https://a.example/out", "https://b.example/out"]
        );
        assert!(list(db, "unknown").expect("list").is_empty());
    }
    on_both_backends!(post_logout_verbs);
}
