//! id_token signing keys: reading them and adding one. Which key signs and which are
//! published is the rule book's decision (`oauth::key_phases`); this module only reads and
//! writes. Private keys leave this module only as `jose::PrivateKey`, which never prints.

use super::sql::{lock_rows, Db};
use super::StoreError;
use crate::jose::{self, Alg, GeneratedKey, PrivateKey};
use crate::oauth::KeyTimes;

/// One stored key.
#[derive(Debug)]
pub struct StoredKey {
    pub kid: String,
    pub alg: Alg,
    pub private: PrivateKey,
    /// The public JWK (JSON object without kid, alg and use).
    pub public_jwk: String,
    pub times: KeyTimes,
}

/// Every key, in the order stored (the timeline breaks ties by it). A row with an algorithm this binary does not know is skipped
/// (the table's CHECK keeps them out).
pub fn list(db: &impl Db) -> Result<Vec<StoredKey>, StoreError> {
    let rows = db.query_all(
        "SELECT kid, alg, private_pkcs8, public_jwk, created_at, signs_from
         FROM signing_keys ORDER BY created_at, rowid",
        &[],
        |r| {
            Ok((
                r.get::<String>(0)?,
                r.get::<String>(1)?,
                r.get::<Vec<u8>>(2)?,
                r.get::<String>(3)?,
                KeyTimes {
                    created_at: r.get(4)?,
                    signs_from: r.get(5)?,
                },
            ))
        },
    )?;
    let keys = rows
        .into_iter()
        .filter_map(|(kid, alg, der, public_jwk, times)| {
            Some(StoredKey {
                kid,
                alg: Alg::parse(&alg)?,
                private: PrivateKey::from_der(der),
                public_jwk,
                times,
            })
        })
        .collect();
    Ok(keys)
}

/// Whether a key of `alg` exists (first use generates one when none does).
pub fn has_key(db: &impl Db, alg: Alg) -> Result<bool, StoreError> {
    db.query_one(
        "SELECT EXISTS (SELECT 1 FROM signing_keys WHERE alg = ?1)",
        &[&alg.as_str()],
        |r| r.get(0),
    )
}

/// Stores `key` as the first key of `alg` unless a key of `alg` exists; the kid when
/// stored. Instances doing this at once on one database take turns (each locks the
/// database's marker row first, and reads for a key after the one before committed), so
/// exactly one first key is made.
pub fn insert_first(
    db: &impl Db,
    alg: Alg,
    key: &GeneratedKey,
    times: KeyTimes,
) -> Result<Option<String>, StoreError> {
    lock_rows(
        db,
        "SELECT key FROM oauthd_meta WHERE key = 'application'",
        &[],
    )?;
    if has_key(db, alg)? {
        return Ok(None);
    }
    insert(db, alg, key, times).map(Some)
}

/// Deletes the keys `kids` (keys no valid id_token can name any more); returns how many.
pub fn delete(db: &impl Db, kids: &[&str]) -> Result<usize, StoreError> {
    let mut deleted = 0;
    for kid in kids {
        deleted += db.execute("DELETE FROM signing_keys WHERE kid = ?1", &[kid])?;
    }
    Ok(deleted)
}

/// Stores a generated key under its thumbprint; returns that kid.
pub fn insert(
    db: &impl Db,
    alg: Alg,
    key: &GeneratedKey,
    times: KeyTimes,
) -> Result<String, StoreError> {
    let kid = jose::thumbprint(&key.public_jwk);
    let public_jwk = serde_json::Value::Object(key.public_jwk.clone()).to_string();
    db.execute(
        "INSERT INTO signing_keys (kid, alg, private_pkcs8, public_jwk, created_at, signs_from)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        &[
            &kid,
            &alg.as_str(),
            &key.private.der(),
            &public_jwk,
            &times.created_at,
            &times.signs_from,
        ],
    )?;
    Ok(kid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_backends::on_both_backends;

    fn signing_key_verbs(db: &impl Db) {
        assert!(!has_key(db, Alg::Es256).expect("has key"));
        let same = KeyTimes {
            created_at: 100,
            signs_from: 200,
        };
        let mut kids = Vec::new();
        for _ in 0..3 {
            let generated = jose::generate(Alg::Es256).expect("generate");
            let kid = insert(db, Alg::Es256, &generated, same).expect("insert");
            assert_eq!(kid, jose::thumbprint(&generated.public_jwk));
            kids.push((kid, generated.private.der().to_vec()));
        }
        let earlier = jose::generate(Alg::Es256).expect("generate");
        let first = KeyTimes {
            created_at: 50,
            signs_from: 50,
        };
        let earliest = insert(db, Alg::Es256, &earlier, first).expect("insert");
        assert!(has_key(db, Alg::Es256).expect("has key"));
        assert!(!has_key(db, Alg::Rs256).expect("has key"));

        let listed = list(db).expect("list");
        let order: Vec<_> = listed.iter().map(|k| k.kid.clone()).collect();
        let mut expected = vec![earliest];
        expected.extend(kids.iter().map(|(kid, _)| kid.clone()));
        assert_eq!(order, expected, "by creation, ties in the order stored");
        assert_eq!(listed[1].private.der(), kids[0].1.as_slice());
        assert_eq!((listed[1].alg, listed[1].times), (Alg::Es256, same));
        assert!(
            listed[1].public_jwk.starts_with('{'),
            "{}",
            listed[1].public_jwk
        );

        let gone = [kids[0].0.as_str(), "no-such-kid"];
        assert_eq!(delete(db, &gone).expect("delete"), 1);
        assert_eq!(list(db).expect("list").len(), 3);
    }
    on_both_backends!(signing_key_verbs);

    fn a_first_key_is_stored_once(db: &impl Db) {
        let times = KeyTimes {
            created_at: 100,
            signs_from: 100,
        };
        let first = jose::generate(Alg::Es256).expect("generate");
        let kid = insert_first(db, Alg::Es256, &first, times).expect("first");
        assert_eq!(kid, Some(jose::thumbprint(&first.public_jwk)));
        let second = jose::generate(Alg::Es256).expect("generate");
        assert_eq!(
            insert_first(db, Alg::Es256, &second, times).expect("second"),
            None
        );
        let ed = jose::generate(Alg::EdDsa).expect("generate");
        let other_alg = insert_first(db, Alg::EdDsa, &ed, times).expect("other alg");
        assert!(other_alg.is_some());
        assert_eq!(list(db).expect("list").len(), 2);
    }
    on_both_backends!(a_first_key_is_stored_once);

    /// Instances making a first key at once on one empty PostgreSQL database, each in its
    /// own transaction held open a while after its decision (as a slow commit would):
    /// exactly one key is stored.
    #[cfg(feature = "postgres")]
    #[test]
    fn racing_first_keys_on_postgres_store_one() {
        use crate::store::Store;
        const RACERS: usize = 4;
        let url = crate::store::pg::test_cluster::shared().new_database();
        let store = Store::connect_postgres(&url).expect("connect");
        let start = std::sync::Barrier::new(RACERS);
        let times = KeyTimes {
            created_at: 100,
            signs_from: 100,
        };
        let stored: Vec<Option<String>> = std::thread::scope(|scope| {
            let racers: Vec<_> = (0..RACERS)
                .map(|_| {
                    let (store, start) = (&store, &start);
                    scope.spawn(move || {
                        let key = jose::generate(Alg::Es256).expect("generate");
                        store
                            .transaction(|db| {
                                start.wait();
                                let kid = insert_first(db, Alg::Es256, &key, times)?;
                                std::thread::sleep(std::time::Duration::from_millis(200));
                                Ok(kid)
                            })
                            .expect("transaction")
                    })
                })
                .collect();
            racers
                .into_iter()
                .map(|r| r.join().expect("racer"))
                .collect()
        });
        assert_eq!(stored.iter().flatten().count(), 1, "{stored:?}");
        let keys = store.with_conn(|db| list(db)).expect("list");
        assert_eq!(keys.len(), 1);
    }
}
