//! Browser sessions (SSO): rows keyed by the SHA-256 of the cookie's id, so the file never
//! holds a usable session. Reads and writes only; whether a session still counts (expiry,
//! idle timeout, `max_age`) is decided in `oauth::prompt`.

use super::sql::Db;
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
    db: &impl Db,
    id_hash: &SecretHash,
    user_id: &str,
    ttl_secs: i64,
    replaced: Option<&SecretHash>,
) -> Result<(), StoreError> {
    let at = now();
    db.execute(
        "DELETE FROM sessions WHERE id_hash IN
             (SELECT id_hash FROM sessions WHERE expires_at <= ?1 LIMIT 16)",
        &[&RETENTION.expired_by(at)],
    )?;
    if let Some(old) = replaced {
        end(db, old)?;
    }
    db.execute(
        "INSERT INTO sessions (id_hash, user_id, auth_time, last_seen, expires_at)
         VALUES (?1, ?2, ?3, ?3, ?4)",
        &[id_hash, &user_id, &at, &at.saturating_add(ttl_secs)],
    )?;
    Ok(())
}

/// The session with this id hash, whatever its age (the caller decides whether it counts).
pub fn find(db: &impl Db, id_hash: &SecretHash) -> Result<Option<SessionRow>, StoreError> {
    db.query_opt(
        "SELECT s.user_id, u.email, u.disabled, s.auth_time, s.last_seen, s.expires_at
         FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = ?1",
        &[id_hash],
        |r| {
            Ok(SessionRow {
                user_id: r.get(0)?,
                email: r.get(1)?,
                user_disabled: r.get(2)?,
                auth_time: r.get(3)?,
                last_seen: r.get(4)?,
                expires_at: r.get(5)?,
            })
        },
    )
}

/// Records that the session was used now (called coarsely, for the idle timeout).
pub fn touch(db: &impl Db, id_hash: &SecretHash) -> Result<(), StoreError> {
    db.execute(
        "UPDATE sessions SET last_seen = ?2 WHERE id_hash = ?1",
        &[id_hash, &now()],
    )?;
    Ok(())
}

/// Ends one session (logout, or replaced by a new sign-in).
pub fn end(db: &impl Db, id_hash: &SecretHash) -> Result<(), StoreError> {
    db.execute("DELETE FROM sessions WHERE id_hash = ?1", &[id_hash])?;
    Ok(())
}

/// Ends every session of a user (disabled, or their password changed). Returns how many.
pub fn end_for_user(db: &impl Db, user_id: &str) -> Result<usize, StoreError> {
    db.execute("DELETE FROM sessions WHERE user_id = ?1", &[&user_id])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_backends::{on_both_backends, seed_user_and_client};

    fn session_verbs(db: &impl Db) {
        seed_user_and_client(db);
        let (first, second, stale) = ([1u8; 32], [2u8; 32], [3u8; 32]);
        db.execute(
            "INSERT INTO sessions (id_hash, user_id, auth_time, last_seen, expires_at)
             VALUES (?1, 'u', 0, 0, ?2)",
            &[&stale, &RETENTION.expired_by(now()).saturating_sub(1)],
        )
        .expect("an expired session");
        create(db, &first, "u", 3600, None).expect("create");
        assert!(
            find(db, &stale).expect("find").is_none(),
            "expired rows are swept"
        );
        let found = find(db, &first).expect("find").expect("created");
        assert_eq!(
            (
                found.user_id.as_str(),
                found.email.as_str(),
                found.user_disabled
            ),
            ("u", "u@x.org", false)
        );
        assert_eq!(found.expires_at - found.auth_time, 3600);
        assert_eq!(found.last_seen, found.auth_time);

        db.execute(
            "UPDATE sessions SET last_seen = 0 WHERE id_hash = ?1",
            &[&first],
        )
        .expect("age it");
        touch(db, &first).expect("touch");
        assert!(find(db, &first).expect("find").expect("found").last_seen > 0);

        create(db, &second, "u", 60, Some(&first)).expect("replace");
        assert!(find(db, &first).expect("find").is_none(), "replaced");
        create(db, &first, "u", 60, None).expect("another");
        end(db, &first).expect("end");
        assert!(find(db, &first).expect("find").is_none());
        create(db, &first, "u", 60, None).expect("another");
        assert_eq!(end_for_user(db, "u").expect("end all"), 2);
        assert!(find(db, &second).expect("find").is_none());
    }
    on_both_backends!(session_verbs);
}
