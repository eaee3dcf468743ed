//! ACME accounts and certificates: reading and writing the rows. When to renew and how
//! long to back off is decided in `tls::renewal`; this module only reads and writes.
//!
//! The account key and the certificate keys are stored as they must be used (a TLS key
//! cannot be hashed); they never leave this module in a printable type other than the
//! PEM the TLS setup parses.

use rusqlite::{params, Connection, OptionalExtension};

use super::StoreError;

/// A stored certificate (its chain and key may be missing before the first issuance)
/// and the state of its renewal.
#[derive(Clone, Default)]
pub struct CertRow {
    pub domains: String,
    pub chain_pem: Option<String>,
    pub key_pem: Option<String>,
    pub issuer: Option<String>,
    pub not_before: Option<i64>,
    pub not_after: Option<i64>,
    pub issued_at: Option<i64>,
    pub next_attempt: Option<i64>,
    pub failures: i64,
    pub last_error: Option<String>,
}

impl std::fmt::Debug for CertRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("CertRow")
            .field("domains", &self.domains)
            .field("issuer", &self.issuer)
            .field("not_after", &self.not_after)
            .field("next_attempt", &self.next_attempt)
            .field("failures", &self.failures)
            .field("last_error", &self.last_error)
            .finish_non_exhaustive()
    }
}

/// The stored account credentials (JSON) for `directory`, if any.
pub fn account(conn: &Connection, directory: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT credentials FROM acme_accounts WHERE directory = ?1",
            [directory],
            |r| r.get(0),
        )
        .optional()?)
}

/// Stores the account created at `directory`.
pub fn save_account(
    conn: &Connection,
    directory: &str,
    credentials: &str,
    now: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO acme_accounts (directory, credentials, created_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (directory) DO UPDATE SET credentials = excluded.credentials",
        params![directory, credentials, now],
    )?;
    Ok(())
}

const CERT_COLUMNS: &str = "domains, chain_pem, key_pem, issuer, not_before, not_after, \
                            issued_at, next_attempt, failures, last_error";

fn cert_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CertRow> {
    Ok(CertRow {
        domains: r.get(0)?,
        chain_pem: r.get(1)?,
        key_pem: r.get(2)?,
        issuer: r.get(3)?,
        not_before: r.get(4)?,
        not_after: r.get(5)?,
        issued_at: r.get(6)?,
        next_attempt: r.get(7)?,
        failures: r.get(8)?,
        last_error: r.get(9)?,
    })
}

/// The row of `domains` (the key [`domains_key`] builds), if any.
pub fn certificate(conn: &Connection, domains: &str) -> Result<Option<CertRow>, StoreError> {
    Ok(conn
        .query_row(
            &format!("SELECT {CERT_COLUMNS} FROM acme_certificates WHERE domains = ?1"),
            [domains],
            cert_row,
        )
        .optional()?)
}

/// Every stored row, by domains.
pub fn certificates(conn: &Connection) -> Result<Vec<CertRow>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {CERT_COLUMNS} FROM acme_certificates ORDER BY domains"
    ))?;
    let rows = stmt.query_map([], cert_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Stores a newly issued certificate and clears the failure state.
pub fn save_certificate(conn: &Connection, row: &CertRow) -> Result<(), StoreError> {
    conn.execute(
        &format!(
            "INSERT OR REPLACE INTO acme_certificates ({CERT_COLUMNS})
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
        ),
        params![
            row.domains,
            row.chain_pem,
            row.key_pem,
            row.issuer,
            row.not_before,
            row.not_after,
            row.issued_at,
            row.next_attempt,
            row.failures,
            row.last_error,
        ],
    )?;
    Ok(())
}

/// Records a failed attempt, keeping whatever certificate is stored.
pub fn record_failure(
    conn: &Connection,
    domains: &str,
    error: &str,
    failures: i64,
    next_attempt: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO acme_certificates (domains, failures, last_error, next_attempt)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (domains) DO UPDATE SET failures = excluded.failures,
             last_error = excluded.last_error, next_attempt = excluded.next_attempt",
        params![domains, failures, error, next_attempt],
    )?;
    Ok(())
}

/// The row key of a set of domains: lower-cased, sorted, space-separated.
pub fn domains_key(domains: &[String]) -> String {
    let mut names: Vec<String> = domains.iter().map(|d| d.to_ascii_lowercase()).collect();
    names.sort();
    names.dedup();
    names.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_keeps_the_stored_certificate() {
        let (_dir, store) = crate::store::seeded_store("");
        store
            .transaction(|conn| {
                save_certificate(
                    conn.sqlite()?,
                    &CertRow {
                        domains: "a.example".into(),
                        chain_pem: Some("CHAIN".into()),
                        key_pem: Some("KEY".into()),
                        not_after: Some(100),
                        ..CertRow::default()
                    },
                )?;
                record_failure(conn.sqlite()?, "a.example", "refused", 2, 50)
            })
            .expect("write");
        let row = store
            .with_conn(|conn| certificate(conn.sqlite()?, "a.example"))
            .expect("read")
            .expect("row");
        assert_eq!(row.chain_pem.as_deref(), Some("CHAIN"));
        assert_eq!(row.not_after, Some(100));
        assert_eq!((row.failures, row.next_attempt), (2, Some(50)));
        assert_eq!(row.last_error.as_deref(), Some("refused"));
    }

    #[test]
    fn domains_key_is_order_and_case_blind() {
        let key = domains_key(&["B.example".into(), "a.example".into(), "b.example".into()]);
        assert_eq!(key, "a.example b.example");
    }
}
