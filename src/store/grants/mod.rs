//! Grants and everything that descends from them: authorization codes, access tokens and
//! refresh tokens. The writing functions expect to run inside a write transaction (the
//! server's writer runs each in a savepoint of its group commit): a `StoreError` undoes
//! everything the function wrote, and writes serialise, so of many concurrent exchanges
//! of one code exactly one wins.
//!
//! Lock order (PostgreSQL, where write jobs run concurrently): a job that writes a grant's
//! rows locks the grant first (`sql::lock_rows`), then its codes and tokens. Removing a
//! user or client deletes (locks) the grant before its cascade reaches the codes and
//! tokens; a job that locked a token first and then needed the grant (the foreign key
//! check of a new token takes a share lock on it) would wait on the removal while the
//! removal waits on it, a deadlock PostgreSQL ends with an error. After its grant, a job
//! share-locks its client row (logging its attempt): so `clients::remove` deletes the
//! grants before the client row. Concurrent jobs over one grant run one after another,
//! each reading what the last one wrote.
//!
//! The store decides nothing: it reads the facts a decision of the rule book (`oauth`)
//! needs, and carries out the decision the token endpoint hands back, both inside the same
//! transaction. Codes and tokens arrive here already hashed (`SecretHash`); the clear text
//! never does.

mod codes;
mod direct;
mod lookup;
mod refresh;
mod revoke;
mod subject;

#[cfg(all(test, feature = "postgres"))]
pub(crate) use codes::test_code;
pub use codes::{find_code, issue_code, use_code, NewCode};
pub use direct::{issue_direct, DirectGrant};
pub use lookup::{
    find_access, find_access_with_memberships, find_token, token_facts_counts, AccessInfo,
    MemberAccess, TokenKind,
};
#[cfg(feature = "postgres")]
pub use lookup::{find_access_with_memberships_awaited, find_token_awaited};
pub use refresh::{find_refresh_token, keep, rotate, rotate_again};
pub use revoke::{
    find_revocation, revoke_after_attack, revoke_all, revoke_grant, revoke_token,
    revoke_where_client, revoke_where_user,
};
pub use subject::{id_token_facts, subject, GrantSubject};

use super::sql::Db;
use super::{audit, StoreError};

use crate::oauth::RETENTION;
use crate::secret::SecretHash;

/// Fresh tokens to store for a successful exchange or refresh.
pub struct NewTokens {
    pub access_hash: SecretHash,
    pub access_ttl_secs: i64,
    pub refresh_hash: SecretHash,
    /// `None`: the refresh token never expires.
    pub refresh_ttl_secs: Option<i64>,
}

/// A grant and whose it is, for the audit trail.
#[derive(Debug, Clone, Copy)]
pub struct GrantRef<'a> {
    pub grant_id: i64,
    pub user_email: &'a str,
    pub client_id: &'a str,
}

/// Who, which client and from where, for the audit trail.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub remote_addr: &'a str,
}

impl Origin<'_> {
    /// Records a grant event from this origin in the audit trail, inside `tx`.
    pub(super) fn record(
        self,
        db: &impl Db,
        event: &str,
        user_email: &str,
        client_id: &str,
        detail: Option<&str>,
    ) -> Result<(), StoreError> {
        audit::record(
            db,
            &audit::Event {
                event,
                user_email: Some(user_email),
                client_id: Some(client_id),
                remote_addr: Some(self.remote_addr),
                detail,
            },
        )
    }
}

/// Stores a new access token for the grant, and deletes the grant's expired ones: each
/// refresh cleans up after the previous, so a grant holds at most its live tokens and one
/// expired one, without a housekeeping job. The (grant_id, expires_at) index makes the
/// delete a range seek that usually finds nothing.
/// `scope` is the token's own scope when a refresh narrowed it (`None`: the grant's).
pub(super) fn insert_access_token(
    db: &impl Db,
    grant_id: i64,
    tokens: &NewTokens,
    scope: Option<&str>,
    at: i64,
) -> Result<(), StoreError> {
    db.execute_later(
        "DELETE FROM access_tokens WHERE grant_id = ?1 AND expires_at <= ?2",
        &[&grant_id, &RETENTION.expired_by(at)],
    )?;
    db.execute_later(
        "INSERT INTO access_tokens (token_hash, grant_id, created_at, expires_at, scope)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        &[
            &tokens.access_hash,
            &grant_id,
            &at,
            &at.saturating_add(tokens.access_ttl_secs),
            &scope,
        ],
    )?;
    Ok(())
}

/// Stores the first tokens of a grant: its access token and, when `with_refresh`, its
/// refresh token.
pub(super) fn insert_first_tokens(
    db: &impl Db,
    grant_id: i64,
    tokens: &NewTokens,
    with_refresh: bool,
    at: i64,
) -> Result<(), StoreError> {
    insert_access_token(db, grant_id, tokens, None, at)?;
    if with_refresh {
        insert_refresh_token(db, grant_id, tokens, at)?;
    }
    Ok(())
}

/// Stores `tokens`' refresh token for the grant.
pub(super) fn insert_refresh_token(
    db: &impl Db,
    grant_id: i64,
    tokens: &NewTokens,
    at: i64,
) -> Result<(), StoreError> {
    let expires_at = tokens.refresh_ttl_secs.map(|t| at.saturating_add(t));
    db.execute_later(
        "INSERT INTO refresh_tokens (token_hash, grant_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
        &[&tokens.refresh_hash, &grant_id, &at, &expires_at],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::now;
    use crate::store::Store;
    use rusqlite::params;

    fn setup() -> (tempfile::TempDir, Store) {
        crate::store::seeded_store(
            "INSERT INTO grants (id, user_id, client_id, created_at) VALUES (7, 'u', 'c', 0);",
        )
    }

    fn count(store: &Store, sql: &str) -> i64 {
        store
            .with_conn(|c| Ok(c.sqlite()?.query_row(sql, [], |r| r.get(0))?))
            .expect("count")
    }

    #[test]
    fn issuing_an_access_token_deletes_the_grants_expired_ones_only() {
        let (_dir, store) = setup();
        store
            .transaction(|tx| {
                tx.sqlite()?.execute_batch(
                    "INSERT INTO grants (id, user_id, client_id, created_at) VALUES (8, 'u', 'c', 0);
                     INSERT INTO access_tokens VALUES (x'01', 7, 0, 1, NULL);
                     INSERT INTO access_tokens VALUES (x'02', 8, 0, 1, NULL);",
                )?;
                let tokens = NewTokens {
                    access_hash: [3; 32],
                    access_ttl_secs: 60,
                    refresh_hash: [4; 32],
                    refresh_ttl_secs: None,
                };
                insert_access_token(tx, 7, &tokens, None, now())
            })
            .expect("insert");
        assert_eq!(
            count(
                &store,
                "SELECT count(*) FROM access_tokens WHERE grant_id = 7"
            ),
            1
        );
        assert_eq!(
            count(
                &store,
                "SELECT count(*) FROM access_tokens WHERE grant_id = 8"
            ),
            1,
            "other grants untouched"
        );
    }

    #[test]
    fn issuing_a_code_deletes_codes_expired_over_a_day_ago() {
        let (_dir, store) = setup();
        let old = crate::oauth::RETENTION.codes_expired_before(now()) - 10;
        let recent = now() - 10;
        store
            .transaction(|tx| {
                tx.sqlite()?.execute(
                    "INSERT INTO authorization_codes (code_hash, grant_id, redirect_uri, created_at, expires_at)
                     VALUES (x'01', 7, 'r', 0, ?1), (x'02', 7, 'r', 0, ?2)",
                    params![old, recent],
                )?;
                issue_code(
                    tx,
                    &codes::test_code([9; 32]),
                    Origin { remote_addr: "test" },
                    "u@x.org",
                )
            })
            .expect("issue");
        assert_eq!(
            count(
                &store,
                "SELECT count(*) FROM authorization_codes WHERE code_hash = x'01'"
            ),
            0
        );
        assert_eq!(
            count(
                &store,
                "SELECT count(*) FROM authorization_codes WHERE code_hash = x'02'"
            ),
            1,
            "recently expired kept for replay detection"
        );
        assert_eq!(count(&store, "SELECT count(*) FROM authorization_codes"), 2);
    }
}

#[cfg(test)]
mod backends;
