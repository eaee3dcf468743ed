//! Server secrets by name (the CSRF key): made once, by whichever instance of a database
//! needs one first, and read back by every instance, so all of them agree. Values are
//! stored as they are used (a key cannot be hashed) and never leave this module except
//! to their one user; never logged.

use super::sql::Db;
use super::{now, StoreError};

/// The secret `name`, storing `fresh` as it when there is none yet. Instances racing on
/// an empty database all get the one value stored first: the insert keeps an existing
/// row, and the value is read back after it. A secret that exists costs one read.
pub fn get_or_create(db: &impl Db, name: &str, fresh: &[u8]) -> Result<Vec<u8>, StoreError> {
    if let Some(stored) = find(db, name)? {
        return Ok(stored);
    }
    db.execute(
        "INSERT INTO server_secrets (name, value, created_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (name) DO NOTHING",
        &[&name, &fresh, &now()],
    )?;
    find(db, name)?.ok_or(StoreError::Sqlite(rusqlite::Error::QueryReturnedNoRows))
}

fn find(db: &impl Db, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
    db.query_opt(
        "SELECT value FROM server_secrets WHERE name = ?1",
        &[&name],
        |r| r.get(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_backends::on_both_backends;

    fn the_first_value_stays(db: &impl Db) {
        let first = get_or_create(db, "k", &[1; 32]).expect("create");
        assert_eq!(first, [1; 32]);
        assert_eq!(get_or_create(db, "k", &[2; 32]).expect("read"), [1; 32]);
        assert_eq!(get_or_create(db, "other", &[3; 8]).expect("other"), [3; 8]);
        assert_eq!(get_or_create(db, "k", &[4; 32]).expect("again"), [1; 32]);
    }
    on_both_backends!(the_first_value_stays);

    /// Instances starting at once on one empty PostgreSQL database, each with its own
    /// random candidate, all end up with the same secret.
    #[cfg(feature = "postgres")]
    #[test]
    fn instances_racing_for_the_first_secret_agree() {
        let url = crate::store::pg::test_cluster::shared().new_database();
        let stores: Vec<_> = (0..4)
            .map(|_| crate::store::pg::PgStore::connect(&url).expect("connect"))
            .collect();
        let start = std::sync::Barrier::new(stores.len());
        let values: Vec<Vec<u8>> = std::thread::scope(|s| {
            let racers: Vec<_> = stores
                .iter()
                .zip(1u8..)
                .map(|(store, n)| {
                    let start = &start;
                    s.spawn(move || {
                        start.wait();
                        store.with_conn(|db| get_or_create(db, "k", &[n; 32]))
                    })
                })
                .collect();
            racers
                .into_iter()
                .map(|r| r.join().expect("thread").expect("secret"))
                .collect()
        });
        assert!(values.iter().all(|v| *v == values[0]), "{values:?}");
    }
}
