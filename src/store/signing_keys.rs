//! id_token signing keys: reading them and adding one. Which key signs and which are
//! published is the rule book's decision (`oauth::key_phases`); this module only reads and
//! writes. Private keys leave this module only as `jose::PrivateKey`, which never prints.

use rusqlite::{params, Connection};

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
pub fn list(conn: &Connection) -> Result<Vec<StoredKey>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT kid, alg, private_pkcs8, public_jwk, created_at, signs_from
         FROM signing_keys ORDER BY created_at, rowid",
    )?;
    let rows = stmt.query_map([], |r| {
        let alg: String = r.get(1)?;
        Ok((
            r.get::<_, String>(0)?,
            alg,
            r.get::<_, Vec<u8>>(2)?,
            r.get::<_, String>(3)?,
            KeyTimes {
                created_at: r.get(4)?,
                signs_from: r.get(5)?,
            },
        ))
    })?;
    let mut keys = Vec::new();
    for row in rows {
        let (kid, alg, der, public_jwk, times) = row?;
        if let Some(alg) = Alg::parse(&alg) {
            keys.push(StoredKey {
                kid,
                alg,
                private: PrivateKey::from_der(der),
                public_jwk,
                times,
            });
        }
    }
    Ok(keys)
}

/// Whether a key of `alg` exists (first use generates one when none does).
pub fn has_key(conn: &Connection, alg: Alg) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM signing_keys WHERE alg = ?1)")?
        .query_row([alg.as_str()], |r| r.get(0))?)
}

/// Deletes the keys `kids` (keys no valid id_token can name any more); returns how many.
pub fn delete(conn: &Connection, kids: &[&str]) -> Result<usize, StoreError> {
    let mut stmt = conn.prepare_cached("DELETE FROM signing_keys WHERE kid = ?1")?;
    let mut deleted = 0;
    for kid in kids {
        deleted += stmt.execute([kid])?;
    }
    Ok(deleted)
}

/// Stores a generated key under its thumbprint; returns that kid.
pub fn insert(
    conn: &Connection,
    alg: Alg,
    key: &GeneratedKey,
    times: KeyTimes,
) -> Result<String, StoreError> {
    let kid = jose::thumbprint(&key.public_jwk);
    let public_jwk = serde_json::Value::Object(key.public_jwk.clone()).to_string();
    conn.prepare_cached(
        "INSERT INTO signing_keys (kid, alg, private_pkcs8, public_jwk, created_at, signs_from)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        kid,
        alg.as_str(),
        key.private.der(),
        public_jwk,
        times.created_at,
        times.signs_from
    ])?;
    Ok(kid)
}
