//! Users: the accounts that sign in. An email names an account through its folded key
//! (`crate::email::key`, kept in `email_key`): unique, matched by every lookup, and the
//! same key the login throttle uses. The address itself is stored as given. Passwords
//! are stored only as PBKDF2 PHC strings.
//!
//! A database created before Unicode folding may hold accounts whose keys collide (ASCII
//! `NOCASE` kept `Ünï@x.io` and `ünï@x.io` apart). Migration keeps them all rather than
//! merge anyone's account; [`email_collisions`] lists them for `oauthd check`, a sign-in
//! with such an email is refused, and admin commands accept only the address exactly as
//! stored.

use rusqlite::Connection;
use serde::Serialize;

use super::sql::{Db, Row};
use super::{conflict_as, grants, iso8601, now, sessions, StoreError};
use crate::email;

/// A user as the CLI and `/api/me` show it. Never carries the password hash.
#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: Option<String>,
    pub disabled: bool,
    pub created_at: String,
}

/// What a login needs: the stored hash and whether the account may sign in.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub id: String,
    pub email: String,
    pub password_hash: String,
    pub disabled: bool,
}

fn user_from_row(row: &Row<'_>) -> Result<User, StoreError> {
    Ok(User {
        id: row.get(0)?,
        email: row.get(1)?,
        name: row.get(2)?,
        disabled: row.get(3)?,
        created_at: iso8601(row.get(4)?),
    })
}

/// Creates a user; `Conflict` when an account already has the email's folded key. Runs in
/// the caller's write transaction, so the check and the insert cannot be raced; a trigger
/// in the schema refuses a duplicate key as well.
pub fn insert(
    db: &impl Db,
    email: &str,
    name: Option<&str>,
    password_hash: &str,
) -> Result<User, StoreError> {
    const CONFLICT: &str = "a user with this email";
    if email_taken(db, email)? {
        return Err(StoreError::Conflict(CONFLICT));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let at = now();
    db.execute(
        "INSERT INTO users (id, email, email_key, name, password_hash, disabled, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?6)",
        &[&id, &email, &email::key(email), &name, &password_hash, &at],
    )
    .map_err(conflict_as(CONFLICT))?;
    Ok(User {
        id,
        email: email.to_owned(),
        name: name.map(str::to_owned),
        disabled: false,
        created_at: iso8601(at),
    })
}

pub fn list(db: &impl Db) -> Result<Vec<User>, StoreError> {
    db.query_all(
        "SELECT id, email, name, disabled, created_at FROM users ORDER BY email COLLATE NOCASE",
        &[],
        user_from_row,
    )
}

/// The user with this id.
fn by_id(db: &impl Db, id: &str) -> Result<Option<User>, StoreError> {
    db.query_opt(
        "SELECT id, email, name, disabled, created_at FROM users WHERE id = ?1",
        &[&id],
        user_from_row,
    )
}

/// The user `email` names, for admin commands (see [`id_of`]).
pub fn find_by_email(db: &impl Db, email: &str) -> Result<Option<User>, StoreError> {
    match id_of(db, email)? {
        Some(id) => by_id(db, &id),
        None => Ok(None),
    }
}

/// What a sign-in needs, for the one account with the email's folded key. `None` when
/// there is none, and also when several accounts share the key: a sign-in cannot tell
/// whose password to check, so it is refused until an admin resolves the collision.
pub fn credentials_by_email(db: &impl Db, email: &str) -> Result<Option<Credentials>, StoreError> {
    let mut found = db.query_all(
        "SELECT id, email, password_hash, disabled FROM users WHERE email_key = ?1 LIMIT 2",
        &[&email::key(email)],
        |row| {
            Ok(Credentials {
                id: row.get(0)?,
                email: row.get(1)?,
                password_hash: row.get(2)?,
                disabled: row.get(3)?,
            })
        },
    )?;
    Ok(match found.len() {
        1 => found.pop(),
        _ => None,
    })
}

/// The stored emails of every account with the folded key of `email`: none or one,
/// except for collisions kept from before folding (see [`email_collisions`]).
pub fn emails_with_key(db: &impl Db, email: &str) -> Result<Vec<String>, StoreError> {
    Ok(accounts_with_key(db, email)?
        .into_iter()
        .map(|(_, stored)| stored)
        .collect())
}

/// Whether any account has the folded key of `email`.
pub fn email_taken(db: &impl Db, email: &str) -> Result<bool, StoreError> {
    Ok(!accounts_with_key(db, email)?.is_empty())
}

/// Groups of stored emails that fold to one key, each sorted; empty unless the database
/// predates folding. `oauthd check` lists them so an admin can resolve each by hand.
pub fn email_collisions(db: &impl Db) -> Result<Vec<Vec<String>>, StoreError> {
    let rows = db.query_all(
        "SELECT email_key, email FROM users WHERE email_key IN
             (SELECT email_key FROM users GROUP BY email_key HAVING count(*) > 1)
         ORDER BY email_key, email",
        &[],
        |r| Ok((r.get::<String>(0)?, r.get::<String>(1)?)),
    )?;
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for (key, stored) in rows {
        match groups.last_mut() {
            Some((last_key, emails)) if *last_key == key => emails.push(stored),
            _ => groups.push((key, vec![stored])),
        }
    }
    Ok(groups.into_iter().map(|(_, emails)| emails).collect())
}

/// Replaces the password hash, revokes every grant of the user and ends their browser
/// sessions, inside the caller's transaction so the audit entry joins the same commit.
/// Returns how many grants were revoked, or `None` for no such user.
// SQLite's connection until the grant verbs take any `Db`.
pub fn set_password(
    conn: &Connection,
    email: &str,
    password_hash: &str,
) -> Result<Option<usize>, StoreError> {
    let Some(user_id) = id_of(conn, email)? else {
        return Ok(None);
    };
    Db::execute(
        conn,
        "UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE id = ?1",
        &[&user_id, &password_hash, &now()],
    )?;
    sessions::end_for_user(conn, &user_id)?;
    Ok(Some(grants::revoke_where_user(conn, &user_id)?))
}

/// Upgrades a hash after a successful login with the current iteration count, only
/// while `verified` (the hash the login checked) is still the stored one: a password
/// changed meanwhile is never overwritten by a hash of the old one. Leaves tokens alone:
/// the password itself did not change.
pub fn rehash(
    db: &impl Db,
    user_id: &str,
    verified: &str,
    password_hash: &str,
) -> Result<(), StoreError> {
    db.execute(
        "UPDATE users SET password_hash = ?3, updated_at = ?4 WHERE id = ?1 AND password_hash = ?2",
        &[&user_id, &verified, &password_hash, &now()],
    )?;
    Ok(())
}

/// Disables or enables a user inside the caller's transaction; disabling revokes every
/// grant and ends every browser session, so neither works again after a later enable. Returns how many grants were revoked
/// (always 0 when enabling), or `None` for no such user.
// SQLite's connection until the grant verbs take any `Db`.
pub fn set_disabled(
    conn: &Connection,
    email: &str,
    disabled: bool,
) -> Result<Option<usize>, StoreError> {
    let Some(user_id) = id_of(conn, email)? else {
        return Ok(None);
    };
    Db::execute(
        conn,
        "UPDATE users SET disabled = ?2, updated_at = ?3 WHERE id = ?1",
        &[&user_id, &disabled, &now()],
    )?;
    let revoked = if disabled {
        sessions::end_for_user(conn, &user_id)?;
        grants::revoke_where_user(conn, &user_id)?
    } else {
        0
    };
    Ok(Some(revoked))
}

/// Changes a user's email and/or name (`name: Some(None)` clears it) inside the caller's
/// transaction. `Conflict` when another account has the new email's folded key; `None`
/// for no such user. Tokens stay valid: the account is the same.
pub fn update(
    db: &impl Db,
    email: &str,
    new_email: Option<&str>,
    name: Option<Option<&str>>,
) -> Result<Option<User>, StoreError> {
    const CONFLICT: &str = "a user with this email";
    let Some(user_id) = id_of(db, email)? else {
        return Ok(None);
    };
    if let Some(new_email) = new_email {
        if accounts_with_key(db, new_email)?
            .iter()
            .any(|(id, _)| *id != user_id)
        {
            return Err(StoreError::Conflict(CONFLICT));
        }
        db.execute(
            "UPDATE users SET email = ?2, email_key = ?3, updated_at = ?4 WHERE id = ?1",
            &[&user_id, &new_email, &email::key(new_email), &now()],
        )
        .map_err(conflict_as(CONFLICT))?;
    }
    if let Some(name) = name {
        db.execute(
            "UPDATE users SET name = ?2, updated_at = ?3 WHERE id = ?1",
            &[&user_id, &name, &now()],
        )?;
    }
    by_id(db, &user_id)
}

/// Deletes a user; grants, tokens and memberships go with it (ON DELETE CASCADE).
pub fn remove(db: &impl Db, email: &str) -> Result<bool, StoreError> {
    let Some(id) = id_of(db, email)? else {
        return Ok(false);
    };
    Ok(db.execute("DELETE FROM users WHERE id = ?1", &[&id])? > 0)
}

/// The id of the account `email` names, for admin commands: the one account with its
/// folded key. Where several accounts share the key (kept from before folding), only the
/// address exactly as stored names one, so an admin can still resolve the collision;
/// anything else is `AmbiguousEmail`.
pub fn id_of(db: &impl Db, email: &str) -> Result<Option<String>, StoreError> {
    let mut accounts = accounts_with_key(db, email)?;
    if accounts.len() <= 1 {
        return Ok(accounts.pop().map(|(id, _)| id));
    }
    let count = accounts.len();
    accounts
        .into_iter()
        .find(|(_, stored)| stored == email)
        .map(|(id, _)| Some(id))
        .ok_or(StoreError::AmbiguousEmail(count))
}

/// `(id, stored email)` of every account with the folded key of `email`.
fn accounts_with_key(db: &impl Db, email: &str) -> Result<Vec<(String, String)>, StoreError> {
    db.query_all(
        "SELECT id, email FROM users WHERE email_key = ?1 ORDER BY email",
        &[&email::key(email)],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

pub fn count(db: &impl Db) -> Result<i64, StoreError> {
    db.query_one("SELECT count(*) FROM users", &[], |r| r.get(0))
}

/// Calls `visit` with every stored password hash, so the server can learn at start the
/// strongest iteration count in use. On SQLite one row at a time (nothing collected).
pub fn for_each_password_hash(db: &impl Db, mut visit: impl FnMut(&str)) -> Result<(), StoreError> {
    db.query_all("SELECT password_hash FROM users", &[], |r| {
        visit(&r.get::<String>(0)?);
        Ok(())
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_backends::on_both_backends;

    fn user_verbs(db: &impl Db) {
        let ann = insert(db, "Ünï@X.io", Some("Ann"), "hash-1").expect("insert");
        assert!(!ann.disabled && ann.created_at.ends_with('Z'), "{ann:?}");
        let again = insert(db, "ünÏ@x.IO", None, "h").expect_err("same folded key");
        assert!(matches!(again, StoreError::Conflict(_)), "{again}");
        insert(db, "bob@x.io", None, "hash-2").expect("insert bob");
        assert_eq!(count(db).expect("count"), 2);

        let listed: Vec<_> = list(db)
            .expect("list")
            .into_iter()
            .map(|u| u.email)
            .collect();
        assert_eq!(listed, ["bob@x.io", "Ünï@X.io"]);
        let found = find_by_email(db, "ünï@x.io").expect("find").expect("found");
        assert_eq!(
            (found.id.as_str(), found.name.as_deref()),
            (ann.id.as_str(), Some("Ann"))
        );
        assert!(find_by_email(db, "nobody@x.io").expect("find").is_none());
        assert!(!email_taken(db, "UNÏ@x.io").expect("taken"));
        assert!(email_taken(db, "ÜNÏ@x.io").expect("taken"));
        assert_eq!(
            emails_with_key(db, "ünï@X.IO").expect("emails"),
            ["Ünï@X.io"]
        );
        assert!(email_collisions(db).expect("collisions").is_empty());

        let creds = credentials_by_email(db, "ÜNÏ@x.io")
            .expect("creds")
            .expect("found");
        assert_eq!(
            (creds.password_hash.as_str(), creds.disabled),
            ("hash-1", false)
        );
        rehash(db, &ann.id, "stale", "hash-x").expect("rehash");
        rehash(db, &ann.id, "hash-1", "hash-3").expect("rehash");
        let creds = credentials_by_email(db, "ünï@x.io")
            .expect("creds")
            .expect("found");
        assert_eq!(creds.password_hash, "hash-3", "only over the verified hash");

        let taken = update(db, "bob@x.io", Some("ÜNÏ@x.io"), None).expect_err("taken");
        assert!(matches!(taken, StoreError::Conflict(_)), "{taken}");
        let bob = update(db, "BOB@x.io", Some("Robert@x.io"), Some(Some("Rob")))
            .expect("update")
            .expect("found");
        assert_eq!(
            (bob.email.as_str(), bob.name.as_deref()),
            ("Robert@x.io", Some("Rob"))
        );
        let bob = update(db, "robert@x.io", None, Some(None))
            .expect("update")
            .expect("found");
        assert_eq!(bob.name, None);
        assert!(update(db, "gone@x.io", None, None)
            .expect("update")
            .is_none());

        let mut hashes = Vec::new();
        for_each_password_hash(db, |h| hashes.push(h.to_owned())).expect("hashes");
        hashes.sort();
        assert_eq!(hashes, ["hash-2", "hash-3"]);

        assert!(remove(db, "robert@X.io").expect("remove"));
        assert!(!remove(db, "robert@x.io").expect("remove again"));
        assert_eq!(count(db).expect("count"), 1);
    }
    on_both_backends!(user_verbs);

    /// Sign-ups of one folded email at once on PostgreSQL, each in its own transaction
    /// (where both checks run before either insert commits): exactly one account is made,
    /// the others are refused as a conflict.
    #[cfg(feature = "postgres")]
    #[test]
    fn concurrent_inserts_of_one_email_key_make_one_account_on_postgres() {
        use crate::store::pg::{test_cluster, PgStore};

        const RACERS: usize = 4;
        let store = PgStore::connect(&test_cluster::shared().new_database()).expect("connect");
        let checked = std::sync::Barrier::new(RACERS);
        // One folded key (`ß` and `ſ` fold to `s`), yet four different addresses to the
        // case-insensitive `email` column: only the key can tell they are one account.
        let emails = ["maße@x.de", "masse@x.de", "maſſe@x.de", "maſse@x.de"];
        let outcomes: Vec<_> = std::thread::scope(|s| {
            let racers: Vec<_> = emails
                .iter()
                .map(|email| {
                    let (store, checked) = (&store, &checked);
                    s.spawn(move || {
                        store.transaction(|db| {
                            // Every racer has looked before any inserts.
                            let taken = email_taken(db, email)?;
                            checked.wait();
                            assert!(!taken);
                            insert(db, email, None, "h")
                        })
                    })
                })
                .collect();
            racers
                .into_iter()
                .map(|r| r.join().expect("racer"))
                .collect()
        });
        let made = outcomes.iter().filter(|o| o.is_ok()).count();
        assert_eq!(made, 1, "{outcomes:?}");
        for refused in outcomes.iter().filter_map(|o| o.as_ref().err()) {
            assert!(matches!(refused, StoreError::Conflict(_)), "{refused}");
        }
        let count = store.with_conn(count).expect("count");
        assert_eq!(count, 1);
    }
}
