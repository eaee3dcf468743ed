//! Organizations and memberships. A user's role in an organization decides what
//! a token acts as when a call selects that organization.

use serde::Serialize;

use super::sql::{Db, Row};
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

pub fn insert(db: &impl Db, name: &str) -> Result<Org, StoreError> {
    let id = uuid::Uuid::new_v4().to_string();
    let at = now();
    db.execute(
        "INSERT INTO organizations (id, name, created_at) VALUES (?1, ?2, ?3)",
        &[&id, &name, &at],
    )
    .map_err(conflict_as("an organization with this name"))?;
    Ok(Org {
        id,
        name: name.to_owned(),
        created_at: iso8601(at),
    })
}

pub fn list(db: &impl Db) -> Result<Vec<Org>, StoreError> {
    db.query_all(
        "SELECT id, name, created_at FROM organizations ORDER BY name COLLATE NOCASE",
        &[],
        org_from_row,
    )
}

/// Finds an organization by id or, failing that, by name (case-insensitive).
pub fn find(db: &impl Db, id_or_name: &str) -> Result<Option<Org>, StoreError> {
    db.query_opt(
        "SELECT id, name, created_at FROM organizations WHERE id = ?1 OR name = ?1
         ORDER BY id = ?1 DESC LIMIT 1",
        &[&id_or_name],
        org_from_row,
    )
}

fn org_from_row(r: &Row<'_>) -> Result<Org, StoreError> {
    Ok(Org {
        id: r.get(0)?,
        name: r.get(1)?,
        created_at: iso8601(r.get(2)?),
    })
}

/// Adds the user to the organization, or changes their role if already a member.
pub fn member_upsert(
    db: &impl Db,
    org_id: &str,
    user_id: &str,
    role: &str,
) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO memberships (org_id, user_id, role, created_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (org_id, user_id) DO UPDATE SET role = excluded.role",
        &[&org_id, &user_id, &role, &now()],
    )?;
    Ok(())
}

pub fn member_remove(db: &impl Db, org_id: &str, user_id: &str) -> Result<bool, StoreError> {
    let removed = db.execute(
        "DELETE FROM memberships WHERE org_id = ?1 AND user_id = ?2",
        &[&org_id, &user_id],
    )?;
    Ok(removed > 0)
}

/// Every organization the user belongs to, by name.
pub fn memberships_of(db: &impl Db, user_id: &str) -> Result<Vec<Membership>, StoreError> {
    db.query_all(
        "SELECT o.id, o.name, m.role FROM memberships m JOIN organizations o ON o.id = m.org_id
         WHERE m.user_id = ?1 ORDER BY o.name COLLATE NOCASE",
        &[&user_id],
        |r| {
            Ok(Membership {
                id: r.get(0)?,
                name: r.get(1)?,
                role: r.get(2)?,
            })
        },
    )
}

pub fn count(db: &impl Db) -> Result<i64, StoreError> {
    db.query_one("SELECT count(*) FROM organizations", &[], |r| r.get(0))
}

/// A member of an organization, as `org show` lists them.
#[derive(Debug, Clone, Serialize)]
pub struct Member {
    pub email: String,
    pub name: Option<String>,
    pub role: String,
}

/// The organization's members, by email.
pub fn members(db: &impl Db, org_id: &str) -> Result<Vec<Member>, StoreError> {
    db.query_all(
        "SELECT u.email, u.name, m.role FROM memberships m JOIN users u ON u.id = m.user_id
         WHERE m.org_id = ?1 ORDER BY u.email COLLATE NOCASE",
        &[&org_id],
        |r| {
            Ok(Member {
                email: r.get(0)?,
                name: r.get(1)?,
                role: r.get(2)?,
            })
        },
    )
}

/// Deletes the organization; its memberships go with it (ON DELETE CASCADE).
pub fn remove(db: &impl Db, org_id: &str) -> Result<bool, StoreError> {
    Ok(db.execute("DELETE FROM organizations WHERE id = ?1", &[&org_id])? > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_backends::on_both_backends;

    /// Adds a user directly: the users verbs are not on the shared interface yet.
    fn add_user(db: &impl Db, id: &str, email: &str, name: Option<&str>) {
        db.execute(
            "INSERT INTO users (id, email, email_key, name, password_hash, created_at, updated_at)
             VALUES (?1, ?2, ?2, ?3, 'x', 0, 0)",
            &[&id, &email, &name],
        )
        .expect("add user");
    }

    fn org_verbs(db: &impl Db) {
        let acme = insert(db, "Acme").expect("insert");
        let again = insert(db, "ACME").expect_err("same name, other case");
        assert!(matches!(again, StoreError::Conflict(_)), "{again}");
        let beta = insert(db, "beta").expect("insert");
        assert_eq!(count(db).expect("count"), 2);
        let names: Vec<_> = list(db)
            .expect("list")
            .into_iter()
            .map(|o| o.name)
            .collect();
        assert_eq!(names, ["Acme", "beta"]);

        let by_name = find(db, "acme").expect("find").expect("by name, any case");
        assert_eq!(
            (by_name.id.as_str(), by_name.name.as_str()),
            (acme.id.as_str(), "Acme")
        );
        let by_id = find(db, &beta.id).expect("find").expect("by id");
        assert_eq!(by_id.name, "beta");
        // An id wins over another organization's equal name.
        let named_like_id = insert(db, &acme.id).expect("a name equal to an id");
        assert_eq!(
            find(db, &acme.id).expect("find").map(|o| o.name),
            Some("Acme".into())
        );
        assert!(find(db, "nobody").expect("find").is_none());

        add_user(db, "u1", "zed@x.org", Some("Zed"));
        add_user(db, "u2", "Amy@x.org", None);
        member_upsert(db, &acme.id, "u1", "member").expect("add member");
        member_upsert(db, &acme.id, "u2", "viewer").expect("add member");
        member_upsert(db, &acme.id, "u1", "admin").expect("change role");
        member_upsert(db, &beta.id, "u1", "viewer").expect("add member");
        let members: Vec<_> = members(db, &acme.id)
            .expect("members")
            .into_iter()
            .map(|m| (m.email, m.name, m.role))
            .collect();
        assert_eq!(
            members,
            [
                ("Amy@x.org".to_owned(), None, "viewer".to_owned()),
                (
                    "zed@x.org".to_owned(),
                    Some("Zed".to_owned()),
                    "admin".to_owned()
                )
            ]
        );
        let of_u1: Vec<_> = memberships_of(db, "u1")
            .expect("memberships")
            .into_iter()
            .map(|m| (m.name, m.role))
            .collect();
        assert_eq!(
            of_u1,
            [
                ("Acme".to_owned(), "admin".to_owned()),
                ("beta".to_owned(), "viewer".to_owned())
            ]
        );

        assert!(member_remove(db, &acme.id, "u2").expect("remove member"));
        assert!(!member_remove(db, &acme.id, "u2").expect("remove again"));
        assert!(remove(db, &acme.id).expect("remove org"));
        assert!(!remove(db, &acme.id).expect("remove again"));
        assert_eq!(
            memberships_of(db, "u1").expect("memberships").len(),
            1,
            "cascade"
        );
        assert!(remove(db, &named_like_id.id).expect("remove"));
        assert_eq!(count(db).expect("count"), 1);
    }
    on_both_backends!(org_verbs);
}
