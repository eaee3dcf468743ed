//! Users: the accounts that sign in. Emails are unique case-insensitively (the column is
//! `COLLATE NOCASE`); passwords are stored only as PBKDF2 PHC strings.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use super::{conflict_as, grants, iso8601, now, StoreError};

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

const USER_COLUMNS: &str = "id, email, name, disabled, created_at";

fn user_from_row(row: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: row.get(0)?,
        email: row.get(1)?,
        name: row.get(2)?,
        disabled: row.get(3)?,
        created_at: iso8601(row.get(4)?),
    })
}

/// Creates a user; `Conflict("user")` when the email is taken in any letter case.
pub fn insert(
    conn: &Connection,
    email: &str,
    name: Option<&str>,
    password_hash: &str,
) -> Result<User, StoreError> {
    let id = uuid::Uuid::new_v4().to_string();
    let at = now();
    conn.execute(
        "INSERT INTO users (id, email, name, password_hash, disabled, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, 0, ?5, ?5)",
        params![id, email, name, password_hash, at],
    )
    .map_err(conflict_as("a user with this email"))?;
    Ok(User {
        id,
        email: email.to_owned(),
        name: name.map(str::to_owned),
        disabled: false,
        created_at: iso8601(at),
    })
}

pub fn list(conn: &Connection) -> Result<Vec<User>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {USER_COLUMNS} FROM users ORDER BY email COLLATE NOCASE"
    ))?;
    let users = stmt
        .query_map([], user_from_row)?
        .collect::<Result<_, _>>()?;
    Ok(users)
}

pub fn find_by_email(conn: &Connection, email: &str) -> Result<Option<User>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE email = ?1"
    ))?;
    Ok(stmt.query_row([email], user_from_row).optional()?)
}

pub fn credentials_by_email(
    conn: &Connection,
    email: &str,
) -> Result<Option<Credentials>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT id, email, password_hash, disabled FROM users WHERE email = ?1")?;
    let found = stmt
        .query_row([email], |row| {
            Ok(Credentials {
                id: row.get(0)?,
                email: row.get(1)?,
                password_hash: row.get(2)?,
                disabled: row.get(3)?,
            })
        })
        .optional()?;
    Ok(found)
}

/// Replaces the password hash and revokes every grant of the user, inside the caller's
/// transaction so the audit entry joins the same commit.
/// Returns how many grants were revoked, or `None` for no such user.
pub fn set_password(
    conn: &Connection,
    email: &str,
    password_hash: &str,
) -> Result<Option<usize>, StoreError> {
    let Some(user_id) = id_of(conn, email)? else {
        return Ok(None);
    };
    conn.execute(
        "UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE id = ?1",
        params![user_id, password_hash, now()],
    )?;
    Ok(Some(grants::revoke_where_user(conn, &user_id)?))
}

/// Upgrades a hash after a successful login with the current iteration count.
/// Leaves tokens alone: the password itself did not change.
pub fn rehash(conn: &Connection, user_id: &str, password_hash: &str) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE id = ?1",
        params![user_id, password_hash, now()],
    )?;
    Ok(())
}

/// Disables or enables a user inside the caller's transaction; disabling revokes every
/// grant, so tokens stay dead after a later enable. Returns how many grants were revoked
/// (always 0 when enabling), or `None` for no such user.
pub fn set_disabled(
    conn: &Connection,
    email: &str,
    disabled: bool,
) -> Result<Option<usize>, StoreError> {
    let Some(user_id) = id_of(conn, email)? else {
        return Ok(None);
    };
    conn.execute(
        "UPDATE users SET disabled = ?2, updated_at = ?3 WHERE id = ?1",
        params![user_id, disabled, now()],
    )?;
    let revoked = if disabled {
        grants::revoke_where_user(conn, &user_id)?
    } else {
        0
    };
    Ok(Some(revoked))
}

/// Deletes a user; grants, tokens and memberships go with it (ON DELETE CASCADE).
pub fn remove(conn: &Connection, email: &str) -> Result<bool, StoreError> {
    Ok(conn.execute("DELETE FROM users WHERE email = ?1", [email])? > 0)
}

pub fn id_of(conn: &Connection, email: &str) -> Result<Option<String>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT id FROM users WHERE email = ?1")?;
    Ok(stmt.query_row([email], |r| r.get(0)).optional()?)
}

pub fn count(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?)
}

/// Calls `visit` with every stored password hash, one row at a time (never collected),
/// so the server can learn at start the strongest iteration count in use.
pub fn for_each_password_hash(
    conn: &Connection,
    mut visit: impl FnMut(&str),
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare("SELECT password_hash FROM users")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let phc: String = row.get(0)?;
        visit(&phc);
    }
    Ok(())
}
