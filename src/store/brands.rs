//! Brands: the name, colour and logo the sign-in page shows for a Host. The logo bytes
//! live in the database so that backing up the one file backs up everything.

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

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
    conn: &Connection,
    domain: &str,
    name: &str,
    color: Option<&str>,
    logo: Option<&Logo>,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO brands (domain, name, color, logo, logo_content_type, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            domain,
            name,
            color,
            logo.map(|l| &l.bytes),
            logo.map(|l| &l.content_type),
            now()
        ],
    )
    .map_err(conflict_as("a brand for this domain"))?;
    Ok(())
}

pub fn find(conn: &Connection, domain: &str) -> Result<Option<Brand>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT domain, name, color, logo IS NOT NULL, created_at FROM brands WHERE domain = ?1",
    )?;
    Ok(stmt.query_row([domain], brand_from_row).optional()?)
}

pub fn list(conn: &Connection) -> Result<Vec<Brand>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT domain, name, color, logo IS NOT NULL, created_at FROM brands ORDER BY domain",
    )?;
    let brands = stmt
        .query_map([], brand_from_row)?
        .collect::<Result<_, _>>()?;
    Ok(brands)
}

fn brand_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Brand> {
    Ok(Brand {
        domain: row.get(0)?,
        name: row.get(1)?,
        color: row.get(2)?,
        has_logo: row.get(3)?,
        created_at: iso8601(row.get(4)?),
    })
}

pub fn logo(conn: &Connection, domain: &str) -> Result<Option<Logo>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT logo_content_type, logo FROM brands WHERE domain = ?1 AND logo IS NOT NULL",
    )?;
    let found = stmt
        .query_row([domain], |r| {
            Ok(Logo {
                content_type: r.get(0)?,
                bytes: r.get(1)?,
            })
        })
        .optional()?;
    Ok(found)
}

pub fn set_logo(conn: &Connection, domain: &str, logo: &Logo) -> Result<bool, StoreError> {
    let changed = conn.execute(
        "UPDATE brands SET logo = ?2, logo_content_type = ?3 WHERE domain = ?1",
        params![domain, logo.bytes, logo.content_type],
    )?;
    Ok(changed > 0)
}

pub fn remove(conn: &Connection, domain: &str) -> Result<bool, StoreError> {
    Ok(conn.execute("DELETE FROM brands WHERE domain = ?1", [domain])? > 0)
}

pub fn count(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row("SELECT count(*) FROM brands", [], |r| r.get(0))?)
}

/// Changes a brand's name and/or colour (`color: Some(None)` clears it). Returns false
/// when there is no such brand.
pub fn update(
    conn: &Connection,
    domain: &str,
    name: Option<&str>,
    color: Option<Option<&str>>,
) -> Result<bool, StoreError> {
    let changed = conn.execute(
        "UPDATE brands SET name = coalesce(?2, name),
                           color = CASE WHEN ?3 THEN ?4 ELSE color END
         WHERE domain = ?1",
        params![domain, name, color.is_some(), color.flatten()],
    )?;
    Ok(changed > 0)
}
