//! Organizations and memberships. A user's role in an organization decides what
//! a token acts as when a call selects that organization.

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::{conflict_as, iso8601, now, StoreError};

#[derive(Debug, Clone, Serialize)]
pub struct Org {
    pub id: String,
    pub name: String,
    pub created_at: String,
}

/// One organization of a user, with the user's role there.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Membership {
    pub id: String,
    pub name: String,
    pub role: String,
}

pub fn insert(conn: &Connection, name: &str) -> Result<Org, StoreError> {
    let id = uuid::Uuid::new_v4().to_string();
    let at = now();
    conn.execute(
        "INSERT INTO organizations (id, name, created_at) VALUES (?1, ?2, ?3)",
        params![id, name, at],
    )
    .map_err(conflict_as("an organization with this name"))?;
    Ok(Org {
        id,
        name: name.to_owned(),
        created_at: iso8601(at),
    })
}

pub fn list(conn: &Connection) -> Result<Vec<Org>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, name, created_at FROM organizations ORDER BY name COLLATE NOCASE",
    )?;
    let orgs = stmt
        .query_map([], |r| {
            Ok(Org {
                id: r.get(0)?,
                name: r.get(1)?,
                created_at: iso8601(r.get(2)?),
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(orgs)
}

/// Finds an organization by id or, failing that, by name (case-insensitive).
pub fn find(conn: &Connection, id_or_name: &str) -> Result<Option<Org>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, name, created_at FROM organizations WHERE id = ?1 OR name = ?1
         ORDER BY id = ?1 DESC LIMIT 1",
    )?;
    let found = stmt
        .query_row([id_or_name], |r| {
            Ok(Org {
                id: r.get(0)?,
                name: r.get(1)?,
                created_at: iso8601(r.get(2)?),
            })
        })
        .optional()?;
    Ok(found)
}

/// Adds the user to the organization, or changes their role if already a member.
pub fn member_upsert(
    conn: &Connection,
    org_id: &str,
    user_id: &str,
    role: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO memberships (org_id, user_id, role, created_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (org_id, user_id) DO UPDATE SET role = excluded.role",
        params![org_id, user_id, role, now()],
    )?;
    Ok(())
}

pub fn member_remove(conn: &Connection, org_id: &str, user_id: &str) -> Result<bool, StoreError> {
    let removed = conn.execute(
        "DELETE FROM memberships WHERE org_id = ?1 AND user_id = ?2",
        params![org_id, user_id],
    )?;
    Ok(removed > 0)
}

/// Every organization the user belongs to, by name.
pub fn memberships_of(conn: &Connection, user_id: &str) -> Result<Vec<Membership>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT o.id, o.name, m.role FROM memberships m JOIN organizations o ON o.id = m.org_id
         WHERE m.user_id = ?1 ORDER BY o.name COLLATE NOCASE",
    )?;
    let memberships = stmt
        .query_map([user_id], |r| {
            Ok(Membership {
                id: r.get(0)?,
                name: r.get(1)?,
                role: r.get(2)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(memberships)
}

pub fn count(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row("SELECT count(*) FROM organizations", [], |r| r.get(0))?)
}

/// A member of an organization, as `org show` lists them.
#[derive(Debug, Clone, Serialize)]
pub struct Member {
    pub email: String,
    pub name: Option<String>,
    pub role: String,
}

/// The organization's members, by email.
pub fn members(conn: &Connection, org_id: &str) -> Result<Vec<Member>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT u.email, u.name, m.role FROM memberships m JOIN users u ON u.id = m.user_id
         WHERE m.org_id = ?1 ORDER BY u.email COLLATE NOCASE",
    )?;
    let members = stmt
        .query_map([org_id], |r| {
            Ok(Member {
                email: r.get(0)?,
                name: r.get(1)?,
                role: r.get(2)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(members)
}

/// Deletes the organization; its memberships go with it (ON DELETE CASCADE).
pub fn remove(conn: &Connection, org_id: &str) -> Result<bool, StoreError> {
    Ok(conn.execute("DELETE FROM organizations WHERE id = ?1", [org_id])? > 0)
}
