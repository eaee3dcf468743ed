//! Grants and everything that descends from them: authorization codes, access tokens and
//! refresh tokens. The writing functions expect to run inside a write transaction (the
//! server's writer runs each in a savepoint of its group commit): a `StoreError` undoes
//! everything the function wrote, and writes serialise, so of many concurrent exchanges
//! of one code exactly one wins. A protocol refusal (`Ok(Err(Refusal))`) keeps what the
//! function wrote on purpose, e.g. the revocation that follows a replayed code.
//!
//! Codes and tokens arrive here already hashed (`TokenHash`); the clear text never does.
//! Protocol checks that need no I/O (client match, redirect match, PKCE) are passed in as
//! closures by the token endpoint, so they run inside the transaction but live elsewhere.

use rusqlite::{params, Connection, OptionalExtension};

use super::{audit, now, StoreError};

/// How long an expired code is kept, so a replay shortly after expiry is still recognised.
const CODE_KEEP_AFTER_EXPIRY_SECS: i64 = 86_400;

/// A SHA-256 digest of a code, token or secret.
pub type TokenHash = [u8; 32];

/// What the store needs to issue an authorization code for a fresh grant.
pub struct NewCode<'a> {
    pub code_hash: TokenHash,
    pub user_id: &'a str,
    pub client_id: &'a str,
    pub scope: Option<&'a str>,
    pub redirect_uri: &'a str,
    pub code_challenge: Option<&'a str>,
    pub code_challenge_method: Option<&'a str>,
    pub ttl_secs: i64,
}

/// A stored code and its grant, handed to the exchange's checks.
#[derive(Debug, Clone)]
pub struct CodeGrant {
    pub grant_id: i64,
    pub user_email: String,
    pub client_id: String,
    pub scope: Option<String>,
    pub redirect_uri: String,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
}

/// A stored refresh token and its grant, handed to the refresh's checks.
#[derive(Debug, Clone)]
pub struct RefreshGrant {
    pub grant_id: i64,
    pub user_email: String,
    pub client_id: String,
    pub client_is_public: bool,
    pub scope: Option<String>,
    pub bound_secret_hash: Option<Vec<u8>>,
}

/// Fresh tokens to store for a successful exchange or refresh.
pub struct NewTokens {
    pub access_hash: TokenHash,
    pub access_ttl_secs: i64,
    pub refresh_hash: TokenHash,
    /// `None`: the refresh token never expires.
    pub refresh_ttl_secs: Option<i64>,
}

/// Why an exchange or refresh produced no tokens. `Rejected` carries the caller's own
/// error from its checks; the store changed nothing in that case.
#[derive(Debug)]
pub enum Refusal<E> {
    /// No such code/token, or its grant is revoked, or its user disabled.
    Unknown,
    Expired,
    /// A used code presented again: the grant was revoked (RFC 6749 §4.1.2).
    Replayed,
    /// A rotated-out refresh token presented outside the grace rule: grant revoked.
    TheftDetected,
    Rejected(E),
}

/// The outcome of a refresh: whether a new refresh token replaced the presented one.
#[derive(Debug, PartialEq, Eq)]
pub enum RefreshOutcome {
    Kept,
    Rotated,
}

/// Who, which client and from where, for the audit trail.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub remote_addr: &'a str,
}

/// Creates a grant and its authorization code, with an audit entry.
pub fn issue_code(
    tx: &Connection,
    code: &NewCode<'_>,
    origin: Origin<'_>,
    user_email: &str,
) -> Result<(), StoreError> {
    let at = now();
    // Amortised housekeeping: each new code deletes a few codes that expired over a day
    // ago (a day keeps replay detection for late retries; after it a code is useless).
    tx.prepare_cached(
        "DELETE FROM authorization_codes WHERE code_hash IN
             (SELECT code_hash FROM authorization_codes WHERE expires_at < ?1 LIMIT 16)",
    )?
    .execute([at - CODE_KEEP_AFTER_EXPIRY_SECS])?;
    tx.prepare_cached(
        "INSERT INTO grants (user_id, client_id, scope, created_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![code.user_id, code.client_id, code.scope, at])?;
    let grant_id = tx.last_insert_rowid();
    tx.prepare_cached(
        "INSERT INTO authorization_codes
             (code_hash, grant_id, redirect_uri, code_challenge, code_challenge_method, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        code.code_hash,
        grant_id,
        code.redirect_uri,
        code.code_challenge,
        code.code_challenge_method,
        at,
        at.saturating_add(code.ttl_secs)
    ])?;
    audit::record(
        tx,
        &audit::Event {
            event: "login_ok",
            user_email: Some(user_email),
            client_id: Some(code.client_id),
            remote_addr: Some(origin.remote_addr),
            detail: Some("authorization code issued"),
        },
    )?;
    Ok(())
}

/// Exchanges a code for tokens: finds the code; a used code revokes
/// its grant (`Replayed`); an expired one is refused; `check` runs the protocol checks
/// (a refusal there leaves the code unused); then the code is marked used, the optional
/// `bind_secret_hash` bound to the grant, and the tokens stored.
pub fn exchange_code<E>(
    tx: &Connection,
    code_hash: &TokenHash,
    tokens: &NewTokens,
    origin: Origin<'_>,
    check: impl FnOnce(&CodeGrant) -> Result<Option<TokenHash>, E>,
) -> Result<Result<CodeGrant, Refusal<E>>, StoreError> {
    let at = now();
    let found = tx
        .prepare_cached(
            "SELECT g.id, u.email, g.client_id, g.scope, c.redirect_uri,
                    c.code_challenge, c.code_challenge_method, c.expires_at, c.used_at,
                    g.revoked_at IS NOT NULL OR u.disabled
             FROM authorization_codes c
             JOIN grants g ON g.id = c.grant_id
             JOIN users u ON u.id = g.user_id
             WHERE c.code_hash = ?1",
        )?
        .query_row([code_hash], |r| {
            let grant = CodeGrant {
                grant_id: r.get(0)?,
                user_email: r.get(1)?,
                client_id: r.get(2)?,
                scope: r.get(3)?,
                redirect_uri: r.get(4)?,
                code_challenge: r.get(5)?,
                code_challenge_method: r.get(6)?,
            };
            let expires_at: i64 = r.get(7)?;
            let used_at: Option<i64> = r.get(8)?;
            let dead: bool = r.get(9)?;
            Ok((grant, expires_at, used_at, dead))
        })
        .optional()?;
    let Some((grant, expires_at, used_at, dead)) = found else {
        return Ok(Err(Refusal::Unknown));
    };
    if used_at.is_some() {
        revoke_grant(tx, grant.grant_id)?;
        audit::record(
            tx,
            &audit::Event {
                event: "code_replay",
                user_email: Some(&grant.user_email),
                client_id: Some(&grant.client_id),
                remote_addr: Some(origin.remote_addr),
                detail: Some("grant revoked"),
            },
        )?;
        return Ok(Err(Refusal::Replayed));
    }
    if dead {
        return Ok(Err(Refusal::Unknown));
    }
    if expires_at <= at {
        return Ok(Err(Refusal::Expired));
    }
    let bind_secret_hash = match check(&grant) {
        Ok(bind) => bind,
        Err(e) => return Ok(Err(Refusal::Rejected(e))),
    };
    tx.prepare_cached("UPDATE authorization_codes SET used_at = ?2 WHERE code_hash = ?1")?
        .execute(params![code_hash, at])?;
    if let Some(secret_hash) = bind_secret_hash {
        tx.prepare_cached("UPDATE grants SET bound_secret_hash = ?2 WHERE id = ?1")?
            .execute(params![grant.grant_id, secret_hash])?;
    }
    insert_access_token(tx, grant.grant_id, tokens, at)?;
    insert_refresh_token(
        tx,
        grant.grant_id,
        &tokens.refresh_hash,
        tokens.refresh_ttl_secs,
        at,
    )?;
    audit::record(
        tx,
        &audit::Event {
            event: "token_issue",
            user_email: Some(&grant.user_email),
            client_id: Some(&grant.client_id),
            remote_addr: Some(origin.remote_addr),
            detail: Some("authorization_code"),
        },
    )?;
    Ok(Ok(grant))
}

/// Refreshes a grant: finds the refresh token and its grant; `check`
/// verifies the client (a refusal changes nothing); then either keeps the refresh token
/// (confidential clients and public clients with a bound secret) or rotates it, applying
/// the grace rule for a rotated-out token presented again within `grace_secs`, and
/// revoking the grant on any other reuse.
pub fn refresh<E>(
    tx: &Connection,
    refresh_hash: &TokenHash,
    tokens: &NewTokens,
    grace_secs: i64,
    origin: Origin<'_>,
    check: impl FnOnce(&RefreshGrant) -> Result<(), E>,
) -> Result<Result<(RefreshGrant, RefreshOutcome), Refusal<E>>, StoreError> {
    let at = now();
    let found = tx
        .prepare_cached(
            "SELECT g.id, u.email, g.client_id, cl.is_public, g.scope, g.bound_secret_hash,
                    r.expires_at, r.rotated_at, r.successor_hash,
                    g.revoked_at IS NOT NULL OR u.disabled
             FROM refresh_tokens r
             JOIN grants g ON g.id = r.grant_id
             JOIN users u ON u.id = g.user_id
             JOIN clients cl ON cl.id = g.client_id
             WHERE r.token_hash = ?1",
        )?
        .query_row([refresh_hash], |r| {
            let grant = RefreshGrant {
                grant_id: r.get(0)?,
                user_email: r.get(1)?,
                client_id: r.get(2)?,
                client_is_public: r.get(3)?,
                scope: r.get(4)?,
                bound_secret_hash: r.get(5)?,
            };
            let expires_at: Option<i64> = r.get(6)?;
            let rotated_at: Option<i64> = r.get(7)?;
            let successor: Option<Vec<u8>> = r.get(8)?;
            let dead: bool = r.get(9)?;
            Ok((grant, expires_at, rotated_at, successor, dead))
        })
        .optional()?;
    let Some((grant, expires_at, rotated_at, successor, dead)) = found else {
        return Ok(Err(Refusal::Unknown));
    };
    if dead {
        return Ok(Err(Refusal::Unknown));
    }
    if expires_at.is_some_and(|e| e <= at) {
        return Ok(Err(Refusal::Expired));
    }
    if let Err(e) = check(&grant) {
        return Ok(Err(Refusal::Rejected(e)));
    }
    let rotates = grant.client_is_public && grant.bound_secret_hash.is_none();
    let outcome = if !rotates {
        RefreshOutcome::Kept
    } else if let Some(rotated_at) = rotated_at {
        let successor_unused = match &successor {
            Some(s) => tx
                .prepare_cached(
                    "SELECT rotated_at IS NULL FROM refresh_tokens WHERE token_hash = ?1",
                )?
                .query_row([s], |r| r.get::<_, bool>(0))
                .optional()?
                .unwrap_or(false),
            None => false,
        };
        if !(successor_unused && at - rotated_at <= grace_secs) {
            revoke_grant(tx, grant.grant_id)?;
            audit::record(
                tx,
                &audit::Event {
                    event: "refresh_reuse",
                    user_email: Some(&grant.user_email),
                    client_id: Some(&grant.client_id),
                    remote_addr: Some(origin.remote_addr),
                    detail: Some("rotated-out refresh token reused; grant revoked"),
                },
            )?;
            return Ok(Err(Refusal::TheftDetected));
        }
        // Grace retry: drop the successor nobody used and hand out a new one. rotated_at
        // keeps the first rotation time, so retries cannot extend the window.
        tx.prepare_cached("DELETE FROM refresh_tokens WHERE token_hash = ?1")?
            .execute([&successor])?;
        rotate_to(tx, refresh_hash, grant.grant_id, tokens, None, at)?;
        RefreshOutcome::Rotated
    } else {
        rotate_to(tx, refresh_hash, grant.grant_id, tokens, Some(at), at)?;
        RefreshOutcome::Rotated
    };
    insert_access_token(tx, grant.grant_id, tokens, at)?;
    audit::record(
        tx,
        &audit::Event {
            event: "token_refresh",
            user_email: Some(&grant.user_email),
            client_id: Some(&grant.client_id),
            remote_addr: Some(origin.remote_addr),
            detail: Some(match outcome {
                RefreshOutcome::Kept => "kept",
                RefreshOutcome::Rotated => "rotated",
            }),
        },
    )?;
    Ok(Ok((grant, outcome)))
}

/// Points `old` at a new successor and stores it. `rotated_at` is set only on the first
/// rotation of `old`.
fn rotate_to(
    tx: &Connection,
    old: &TokenHash,
    grant_id: i64,
    tokens: &NewTokens,
    rotated_at: Option<i64>,
    at: i64,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "UPDATE refresh_tokens SET successor_hash = ?2, rotated_at = coalesce(rotated_at, ?3)
         WHERE token_hash = ?1",
    )?
    .execute(params![old, tokens.refresh_hash, rotated_at.unwrap_or(at)])?;
    insert_refresh_token(
        tx,
        grant_id,
        &tokens.refresh_hash,
        tokens.refresh_ttl_secs,
        at,
    )
}

/// Stores a new access token for the grant, and deletes the grant's expired ones: each
/// refresh cleans up after the previous, so a grant holds at most its live tokens and one
/// expired one, without a housekeeping job. The (grant_id, expires_at) index makes the
/// delete a range seek that usually finds nothing.
fn insert_access_token(
    tx: &Connection,
    grant_id: i64,
    tokens: &NewTokens,
    at: i64,
) -> Result<(), StoreError> {
    tx.prepare_cached("DELETE FROM access_tokens WHERE grant_id = ?1 AND expires_at <= ?2")?
        .execute(params![grant_id, at])?;
    tx.prepare_cached(
        "INSERT INTO access_tokens (token_hash, grant_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![tokens.access_hash, grant_id, at, at.saturating_add(tokens.access_ttl_secs)])?;
    Ok(())
}

fn insert_refresh_token(
    tx: &Connection,
    grant_id: i64,
    refresh_hash: &TokenHash,
    ttl_secs: Option<i64>,
    at: i64,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO refresh_tokens (token_hash, grant_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![refresh_hash, grant_id, at, ttl_secs.map(|t| at.saturating_add(t))])?;
    Ok(())
}

/// What a live access token stands for.
#[derive(Debug, Clone)]
pub struct AccessInfo {
    pub user_id: String,
    pub email: String,
    pub name: Option<String>,
    pub client_id: String,
    pub scope: Option<String>,
    pub issued_at: i64,
    pub expires_at: i64,
}

/// Looks up a live access token: not expired, grant not revoked, user not disabled.
pub fn find_access(
    conn: &Connection,
    token_hash: &TokenHash,
) -> Result<Option<AccessInfo>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT u.id, u.email, u.name, g.client_id, g.scope, a.created_at, a.expires_at
         FROM access_tokens a
         JOIN grants g ON g.id = a.grant_id
         JOIN users u ON u.id = g.user_id
         WHERE a.token_hash = ?1 AND a.expires_at > ?2 AND g.revoked_at IS NULL AND u.disabled = 0",
    )?;
    Ok(stmt
        .query_row(params![token_hash, now()], access_info_from_row)
        .optional()?)
}

/// Reads the columns both token lookups select, in their order.
fn access_info_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AccessInfo> {
    Ok(AccessInfo {
        user_id: r.get(0)?,
        email: r.get(1)?,
        name: r.get(2)?,
        client_id: r.get(3)?,
        scope: r.get(4)?,
        issued_at: r.get(5)?,
        expires_at: r.get(6)?,
    })
}

/// Looks up a live (never rotated-out, unexpired) refresh token, for introspection.
pub fn find_refresh(
    conn: &Connection,
    token_hash: &TokenHash,
) -> Result<Option<AccessInfo>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT u.id, u.email, u.name, g.client_id, g.scope, r.created_at, coalesce(r.expires_at, 0)
         FROM refresh_tokens r
         JOIN grants g ON g.id = r.grant_id
         JOIN users u ON u.id = g.user_id
         WHERE r.token_hash = ?1 AND r.rotated_at IS NULL AND (r.expires_at IS NULL OR r.expires_at > ?2)
           AND g.revoked_at IS NULL AND u.disabled = 0",
    )?;
    Ok(stmt
        .query_row(params![token_hash, now()], access_info_from_row)
        .optional()?)
}

/// RFC 7009 revocation by a client of one of its own tokens: an access token is deleted;
/// a refresh token revokes its whole grant. Tokens of other clients are left alone.
/// Returns whether anything was revoked.
pub fn revoke_token(
    tx: &Connection,
    token_hash: &TokenHash,
    client_id: &str,
    origin: Origin<'_>,
) -> Result<bool, StoreError> {
    let refresh_grant: Option<(i64, String)> = tx
        .prepare_cached(
            "SELECT g.id, u.email FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id
             JOIN users u ON u.id = g.user_id WHERE r.token_hash = ?1 AND g.client_id = ?2",
        )?
        .query_row(params![token_hash, client_id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    let revoked_email = if let Some((grant_id, email)) = refresh_grant {
        revoke_grant(tx, grant_id)?;
        Some(email)
    } else {
        let email: Option<String> = tx
            .prepare_cached(
                "SELECT u.email FROM access_tokens a JOIN grants g ON g.id = a.grant_id
                 JOIN users u ON u.id = g.user_id WHERE a.token_hash = ?1 AND g.client_id = ?2",
            )?
            .query_row(params![token_hash, client_id], |r| r.get(0))
            .optional()?;
        if email.is_some() {
            tx.prepare_cached("DELETE FROM access_tokens WHERE token_hash = ?1")?
                .execute([token_hash])?;
        }
        email
    };
    if let Some(email) = &revoked_email {
        audit::record(
            tx,
            &audit::Event {
                event: "token_revoke",
                user_email: Some(email),
                client_id: Some(client_id),
                remote_addr: Some(origin.remote_addr),
                detail: None,
            },
        )?;
    }
    Ok(revoked_email.is_some())
}

/// Marks a grant revoked and deletes its tokens and unused codes' power: the code row is
/// kept (marked used) so a later replay is still recognised.
pub fn revoke_grant(conn: &Connection, grant_id: i64) -> Result<(), StoreError> {
    let at = now();
    conn.prepare_cached("UPDATE grants SET revoked_at = coalesce(revoked_at, ?2) WHERE id = ?1")?
        .execute(params![grant_id, at])?;
    conn.prepare_cached("DELETE FROM access_tokens WHERE grant_id = ?1")?
        .execute([grant_id])?;
    conn.prepare_cached("DELETE FROM refresh_tokens WHERE grant_id = ?1")?
        .execute([grant_id])?;
    conn.prepare_cached(
        "UPDATE authorization_codes SET used_at = coalesce(used_at, ?2) WHERE grant_id = ?1",
    )?
    .execute(params![grant_id, at])?;
    Ok(())
}

fn revoke_grants_matching(
    conn: &Connection,
    sql_select_ids: &str,
    arg: &str,
) -> Result<usize, StoreError> {
    let ids: Vec<i64> = conn
        .prepare(sql_select_ids)?
        .query_map([arg], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for id in &ids {
        revoke_grant(conn, *id)?;
    }
    Ok(ids.len())
}

/// Revokes every live grant of a user. Call inside the caller's transaction.
pub fn revoke_where_user(conn: &Connection, user_id: &str) -> Result<usize, StoreError> {
    revoke_grants_matching(
        conn,
        "SELECT id FROM grants WHERE user_id = ?1 AND revoked_at IS NULL",
        user_id,
    )
}

/// Revokes every live grant of a client. Call inside the caller's transaction.
pub fn revoke_where_client(conn: &Connection, client_id: &str) -> Result<usize, StoreError> {
    revoke_grants_matching(
        conn,
        "SELECT id FROM grants WHERE client_id = ?1 AND revoked_at IS NULL",
        client_id,
    )
}

/// Revokes every live grant. Call inside the caller's transaction.
pub fn revoke_all(conn: &Connection) -> Result<usize, StoreError> {
    revoke_grants_matching(
        conn,
        "SELECT id FROM grants WHERE revoked_at IS NULL AND ?1 = ?1",
        "",
    )
}

/// Live access and refresh tokens, for `oauthd check`.
pub fn count_live_tokens(conn: &Connection) -> Result<(i64, i64), StoreError> {
    let at = now();
    let access = conn.query_row(
        "SELECT count(*) FROM access_tokens a JOIN grants g ON g.id = a.grant_id
         WHERE a.expires_at > ?1 AND g.revoked_at IS NULL",
        [at],
        |r| r.get(0),
    )?;
    let refresh = conn.query_row(
        "SELECT count(*) FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id
         WHERE r.rotated_at IS NULL AND (r.expires_at IS NULL OR r.expires_at > ?1) AND g.revoked_at IS NULL",
        [at],
        |r| r.get(0),
    )?;
    Ok((access, refresh))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn setup() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("g.db")).expect("open");
        store
            .transaction(|tx| {
                tx.execute_batch(
                    "INSERT INTO users VALUES ('u', 'u@x.org', NULL, 'x', 0, 0, 0);
                     INSERT INTO clients VALUES ('c', 'C', NULL, 1, 0, NULL, 0);
                     INSERT INTO grants (id, user_id, client_id, created_at) VALUES (7, 'u', 'c', 0);",
                )?;
                Ok(())
            })
            .expect("seed");
        (dir, store)
    }

    fn count(store: &Store, sql: &str) -> i64 {
        store
            .with_conn(|c| Ok(c.query_row(sql, [], |r| r.get(0))?))
            .expect("count")
    }

    #[test]
    fn issuing_an_access_token_deletes_the_grants_expired_ones_only() {
        let (_dir, store) = setup();
        store
            .transaction(|tx| {
                tx.execute_batch(
                    "INSERT INTO grants (id, user_id, client_id, created_at) VALUES (8, 'u', 'c', 0);
                     INSERT INTO access_tokens VALUES (x'01', 7, 0, 1);
                     INSERT INTO access_tokens VALUES (x'02', 8, 0, 1);",
                )?;
                let tokens = NewTokens {
                    access_hash: [3; 32],
                    access_ttl_secs: 60,
                    refresh_hash: [4; 32],
                    refresh_ttl_secs: None,
                };
                insert_access_token(tx, 7, &tokens, now())
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
        let old = now() - CODE_KEEP_AFTER_EXPIRY_SECS - 10;
        let recent = now() - 10;
        store
            .transaction(|tx| {
                tx.execute(
                    "INSERT INTO authorization_codes (code_hash, grant_id, redirect_uri, created_at, expires_at)
                     VALUES (x'01', 7, 'r', 0, ?1), (x'02', 7, 'r', 0, ?2)",
                    params![old, recent],
                )?;
                issue_code(
                    tx,
                    &NewCode {
                        code_hash: [9; 32],
                        user_id: "u",
                        client_id: "c",
                        scope: None,
                        redirect_uri: "https://x/cb",
                        code_challenge: None,
                        code_challenge_method: None,
                        ttl_secs: 60,
                    },
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
