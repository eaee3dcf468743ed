//! Brands: the name, colour and logo the sign-in page shows for a Host. The logo bytes
//! live in the database so that backing up the one file backs up everything.

use serde::Serialize;

use super::sql::{Db, Row};
use super::{conflict_as, iso8601, now, StoreError};

/// A brand as listed; the logo bytes are fetched separately by [`logo`].
#[derive(Debug, Clone, Serialize)]
pub struct Brand {
    pub domain: String,
    pub name: String,
    pub color: Option<String>,
    pub has_logo: bool,
    pub created_at: String,
}

/// A logo image and its media type.
#[derive(Debug, Clone)]
pub struct Logo {
    pub content_type: String,
    pub bytes: Vec<u8>,
}

pub fn insert(
    db: &impl Db,
    domain: &str,
    name: &str,
    color: Option<&str>,
    logo: Option<&Logo>,
) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO brands (domain, name, color, logo, logo_content_type, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        &[
            &domain,
            &name,
            &color,
            &logo.map(|l| &l.bytes),
            &logo.map(|l| &l.content_type),
            &now(),
        ],
    )
    .map_err(conflict_as("a brand for this domain"))?;
    Ok(())
}

pub fn find(db: &impl Db, domain: &str) -> Result<Option<Brand>, StoreError> {
    db.query_opt(
        "SELECT domain, name, color, logo IS NOT NULL, created_at FROM brands WHERE domain = ?1",
        &[&domain],
        brand_from_row,
    )
}

pub fn list(db: &impl Db) -> Result<Vec<Brand>, StoreError> {
    db.query_all(
        "SELECT domain, name, color, logo IS NOT NULL, created_at FROM brands ORDER BY domain",
        &[],
        brand_from_row,
    )
}

fn brand_from_row(row: &Row<'_>) -> Result<Brand, StoreError> {
    Ok(Brand {
        domain: row.get(0)?,
        name: row.get(1)?,
        color: row.get(2)?,
        has_logo: row.get(3)?,
        created_at: iso8601(row.get(4)?),
    })
}

pub fn logo(db: &impl Db, domain: &str) -> Result<Option<Logo>, StoreError> {
    db.query_opt(
        "SELECT logo_content_type, logo FROM brands WHERE domain = ?1 AND logo IS NOT NULL",
        &[&domain],
        |r| {
            Ok(Logo {
                content_type: r.get(0)?,
                bytes: r.get(1)?,
            })
        },
    )
}

pub fn set_logo(db: &impl Db, domain: &str, logo: &Logo) -> Result<bool, StoreError> {
    let changed = db.execute(
        "UPDATE brands SET logo = ?2, logo_content_type = ?3 WHERE domain = ?1",
        &[&domain, &logo.bytes, &logo.content_type],
    )?;
    Ok(changed > 0)
}

pub fn remove(db: &impl Db, domain: &str) -> Result<bool, StoreError> {
    Ok(db.execute("DELETE FROM brands WHERE domain = ?1", &[&domain])? > 0)
}

pub fn count(db: &impl Db) -> Result<i64, StoreError> {
    db.query_one("SELECT count(*) FROM brands", &[], |r| r.get(0))
}

/// Changes a brand's name and/or colour (`color: Some(None)` clears it). Returns false
/// when there is no such brand.
pub fn update(
    db: &impl Db,
    domain: &str,
    name: Option<&str>,
    color: Option<Option<&str>>,
) -> Result<bool, StoreError> {
    let changed = db.execute(
        "UPDATE brands SET name = coalesce(?2, name),
                           color = CASE WHEN ?3 THEN ?4 ELSE color END
         WHERE domain = ?1",
        &[&domain, &name, &color.is_some(), &color.flatten()],
    )?;
    Ok(changed > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_backends::on_both_backends;

    fn brand_verbs(db: &impl Db) {
        let logo = Logo {
            content_type: "image/png".into(),
            bytes: vec![0x89, b'P', b'N', b'G'],
        };
        insert(db, "Example.org", "Example", Some("#112233"), None).expect("insert");
        let again = insert(db, "example.ORG", "Other", None, None).expect_err("same domain");
        assert!(matches!(again, StoreError::Conflict(_)), "{again}");
        insert(db, "a.example", "A", None, Some(&logo)).expect("insert with logo");

        let found = find(db, "EXAMPLE.org")
            .expect("find")
            .expect("found, any case");
        assert_eq!(
            (
                found.domain.as_str(),
                found.name.as_str(),
                found.color.as_deref(),
                found.has_logo
            ),
            ("Example.org", "Example", Some("#112233"), false)
        );
        assert!(found.created_at.ends_with('Z'), "{}", found.created_at);
        assert!(find(db, "missing.example").expect("find").is_none());

        assert!(logo_of(db, "example.org").is_none());
        assert!(set_logo(db, "example.org", &logo).expect("set logo"));
        assert_eq!(logo_of(db, "Example.org"), Some(logo.bytes.clone()));
        assert!(!set_logo(db, "missing.example", &logo).expect("set logo"));

        assert!(update(db, "example.org", Some("New"), Some(None)).expect("update"));
        let updated = find(db, "example.org").expect("find").expect("found");
        assert_eq!((updated.name.as_str(), updated.color), ("New", None));
        assert!(update(db, "example.org", None, Some(Some("#abcdef"))).expect("update"));
        let updated = find(db, "example.org").expect("find").expect("found");
        assert_eq!(
            (updated.name.as_str(), updated.color.as_deref()),
            ("New", Some("#abcdef"))
        );
        assert!(!update(db, "missing.example", Some("X"), None).expect("update"));

        let listed: Vec<_> = list(db)
            .expect("list")
            .into_iter()
            .map(|b| (b.domain, b.has_logo))
            .collect();
        assert_eq!(
            listed,
            [
                ("a.example".to_owned(), true),
                ("Example.org".to_owned(), true)
            ]
        );
        assert_eq!(count(db).expect("count"), 2);
        assert!(remove(db, "EXAMPLE.ORG").expect("remove"));
        assert!(!remove(db, "example.org").expect("remove again"));
        assert_eq!(count(db).expect("count"), 1);
    }
    on_both_backends!(brand_verbs);

    fn logo_of(db: &impl Db, domain: &str) -> Option<Vec<u8>> {
        logo(db, domain).expect("logo").map(|l| l.bytes)
    }
}
