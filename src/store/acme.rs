//! ACME accounts and certificates: reading and writing the rows. When to renew and how
//! long to back off is decided in `tls::renewal`; this module only reads and writes.
//!
//! The account key and the certificate keys are stored as they must be used (a TLS key
//! cannot be hashed); they never leave this module in a printable type other than the
//! PEM the TLS setup parses.

use super::sql::{Db, Row};
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
pub fn account(db: &impl Db, directory: &str) -> Result<Option<String>, StoreError> {
    db.query_opt(
        "SELECT credentials FROM acme_accounts WHERE directory = ?1",
        &[&directory],
        |r| r.get(0),
    )
}

/// Stores the account created at `directory`.
pub fn save_account(
    db: &impl Db,
    directory: &str,
    credentials: &str,
    now: i64,
) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO acme_accounts (directory, credentials, created_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (directory) DO UPDATE SET credentials = excluded.credentials",
        &[&directory, &credentials, &now],
    )?;
    Ok(())
}

/// `SELECT` of every certificate column, then `$rest`: one static statement text.
macro_rules! select_certificates {
    ($rest:literal) => {
        concat!(
            "SELECT domains, chain_pem, key_pem, issuer, not_before, not_after, issued_at,
                    next_attempt, failures, last_error FROM acme_certificates ",
            $rest
        )
    };
}

fn cert_row(r: &Row<'_>) -> Result<CertRow, StoreError> {
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
pub fn certificate(db: &impl Db, domains: &str) -> Result<Option<CertRow>, StoreError> {
    db.query_opt(
        select_certificates!("WHERE domains = ?1"),
        &[&domains],
        cert_row,
    )
}

/// Every stored row, by domains.
pub fn certificates(db: &impl Db) -> Result<Vec<CertRow>, StoreError> {
    db.query_all(select_certificates!("ORDER BY domains"), &[], cert_row)
}

/// Stores a newly issued certificate and clears the failure state: the whole row.
pub fn save_certificate(db: &impl Db, row: &CertRow) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO acme_certificates (domains, chain_pem, key_pem, issuer, not_before,
                                        not_after, issued_at, next_attempt, failures, last_error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (domains) DO UPDATE SET chain_pem = excluded.chain_pem,
             key_pem = excluded.key_pem, issuer = excluded.issuer,
             not_before = excluded.not_before, not_after = excluded.not_after,
             issued_at = excluded.issued_at, next_attempt = excluded.next_attempt,
             failures = excluded.failures, last_error = excluded.last_error",
        &[
            &row.domains,
            &row.chain_pem,
            &row.key_pem,
            &row.issuer,
            &row.not_before,
            &row.not_after,
            &row.issued_at,
            &row.next_attempt,
            &row.failures,
            &row.last_error,
        ],
    )?;
    Ok(())
}

/// Records a failed attempt, keeping whatever certificate is stored.
pub fn record_failure(
    db: &impl Db,
    domains: &str,
    error: &str,
    failures: i64,
    next_attempt: i64,
) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO acme_certificates (domains, failures, last_error, next_attempt)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (domains) DO UPDATE SET failures = excluded.failures,
             last_error = excluded.last_error, next_attempt = excluded.next_attempt",
        &[&domains, &failures, &error, &next_attempt],
    )?;
    Ok(())
}

/// Offers a challenge answer to every instance until `expires_at`: `kind` is
/// `http-01` (by token) or `tls-alpn-01` (by domain).
pub fn offer_challenge(
    db: &impl Db,
    kind: &str,
    name: &str,
    key_authorization: &str,
    expires_at: i64,
) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO acme_challenges (kind, name, key_authorization, expires_at)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (kind, name) DO UPDATE SET key_authorization = excluded.key_authorization,
             expires_at = excluded.expires_at",
        &[&kind, &name, &key_authorization, &expires_at],
    )?;
    Ok(())
}

/// The key authorization offered for `kind` and `name`, with when the offer expires.
pub fn challenge(
    db: &impl Db,
    kind: &str,
    name: &str,
) -> Result<Option<(String, i64)>, StoreError> {
    db.query_opt(
        "SELECT key_authorization, expires_at FROM acme_challenges WHERE kind = ?1 AND name = ?2",
        &[&kind, &name],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

/// Withdraws one offered answer.
pub fn withdraw_challenge(db: &impl Db, kind: &str, name: &str) -> Result<(), StoreError> {
    db.execute(
        "DELETE FROM acme_challenges WHERE kind = ?1 AND name = ?2",
        &[&kind, &name],
    )?;
    Ok(())
}

/// Takes (or extends) `holder`'s lease on ordering for `domains` until `until`, unless
/// another holder's lease runs at `now`: whether `holder` now holds it. One atomic
/// statement, so of several instances racing exactly one gets it.
pub fn take_order_lease(
    db: &impl Db,
    domains: &str,
    holder: &str,
    now: i64,
    until: i64,
) -> Result<bool, StoreError> {
    let changed = db.execute(
        "INSERT INTO acme_order_leases (domains, holder, held_until) VALUES (?1, ?2, ?3)
         ON CONFLICT (domains) DO UPDATE SET holder = excluded.holder,
             held_until = excluded.held_until
         WHERE acme_order_leases.held_until <= ?4 OR acme_order_leases.holder = excluded.holder",
        &[&domains, &holder, &until, &now],
    )?;
    Ok(changed == 1)
}

/// Ends `holder`'s lease on `domains` (another holder's is left alone).
pub fn release_order_lease(db: &impl Db, domains: &str, holder: &str) -> Result<(), StoreError> {
    db.execute(
        "DELETE FROM acme_order_leases WHERE domains = ?1 AND holder = ?2",
        &[&domains, &holder],
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

    fn acme_rows(db: &impl Db) {
        assert_eq!(account(db, "https://ca/dir").expect("account"), None);
        save_account(db, "https://ca/dir", "{\"k\":1}", 5).expect("save");
        save_account(db, "https://ca/dir", "{\"k\":2}", 6).expect("replace");
        assert_eq!(
            account(db, "https://ca/dir").expect("account").as_deref(),
            Some("{\"k\":2}")
        );

        let issued = CertRow {
            domains: "a.example".into(),
            chain_pem: Some("CHAIN".into()),
            key_pem: Some("KEY".into()),
            not_after: Some(100),
            ..CertRow::default()
        };
        save_certificate(db, &issued).expect("save");
        // A failure keeps the stored certificate.
        record_failure(db, "a.example", "refused", 2, 50).expect("failure");
        let row = certificate(db, "a.example").expect("read").expect("row");
        assert_eq!(row.chain_pem.as_deref(), Some("CHAIN"));
        assert_eq!(row.not_after, Some(100));
        assert_eq!((row.failures, row.next_attempt), (2, Some(50)));
        assert_eq!(row.last_error.as_deref(), Some("refused"));
        // A new certificate replaces the whole row, failure state included.
        save_certificate(
            db,
            &CertRow {
                chain_pem: Some("CHAIN2".into()),
                ..issued
            },
        )
        .expect("renew");
        let row = certificate(db, "a.example").expect("read").expect("row");
        assert_eq!(
            (
                row.chain_pem.as_deref(),
                row.failures,
                row.last_error,
                row.next_attempt
            ),
            (Some("CHAIN2"), 0, None, None)
        );
        record_failure(db, "b.example", "no certificate yet", 1, 70).expect("failure");
        let all: Vec<_> = certificates(db)
            .expect("all")
            .into_iter()
            .map(|r| (r.domains, r.chain_pem.is_some()))
            .collect();
        assert_eq!(
            all,
            [("a.example".into(), true), ("b.example".into(), false)]
        );
        assert!(certificate(db, "c.example").expect("read").is_none());
    }
    crate::store::test_backends::on_both_backends!(acme_rows);

    fn shared_challenges_and_leases(db: &impl Db) {
        offer_challenge(db, "http-01", "tok", "tok.thumb", 100).expect("offer");
        offer_challenge(db, "tls-alpn-01", "a.example", "x.thumb", 100).expect("offer");
        let read = |kind, name| challenge(db, kind, name).expect("read");
        for (kind, name, want) in [
            ("http-01", "tok", Some(("tok.thumb".to_owned(), 100))),
            ("http-01", "a.example", None),
            (
                "tls-alpn-01",
                "a.example",
                Some(("x.thumb".to_owned(), 100)),
            ),
            ("tls-alpn-01", "tok", None),
        ] {
            assert_eq!(read(kind, name), want, "{kind} {name}");
        }
        offer_challenge(db, "http-01", "tok", "tok.other", 200).expect("offer again");
        assert_eq!(read("http-01", "tok"), Some(("tok.other".to_owned(), 200)));
        withdraw_challenge(db, "http-01", "tok").expect("withdraw");
        assert_eq!(read("http-01", "tok"), None);
        assert!(read("tls-alpn-01", "a.example").is_some());

        // (holder, now, until): whether it holds the lease after taking it.
        let d = "a.example";
        for (holder, now, until, held) in [
            ("A", 0, 300, true),
            ("B", 10, 310, false),
            ("A", 20, 320, true),
            ("B", 319, 619, false),
            ("B", 320, 620, true),
            ("A", 330, 630, false),
        ] {
            let took = take_order_lease(db, d, holder, now, until).expect("lease");
            assert_eq!(took, held, "{holder} at {now}");
        }
        release_order_lease(db, d, "A").expect("not A's");
        assert!(!take_order_lease(db, d, "A", 400, 700).expect("lease"));
        release_order_lease(db, d, "B").expect("release");
        assert!(take_order_lease(db, d, "A", 400, 700).expect("lease"));
    }
    crate::store::test_backends::on_both_backends!(shared_challenges_and_leases);

    #[test]
    fn domains_key_is_order_and_case_blind() {
        let key = domains_key(&["B.example".into(), "a.example".into(), "b.example".into()]);
        assert_eq!(key, "a.example b.example");
    }
}
