//! Authorization codes: issuing one (with its grant), reading what the exchange decision
//! needs, and carrying out its outcome (tokens, or the revocation of a replayed code).

use super::super::sql::{execute_later_skipping_locked, lock_rows, Db};
use super::super::{now, StoreError};
use super::{insert_first_tokens, GrantRef, NewTokens, Origin, SecretHash};
use crate::oauth::{ClientId, CodeFacts, Scope, RETENTION};

/// What the store needs to issue an authorization code for a fresh grant.
pub struct NewCode<'a> {
    pub code_hash: SecretHash,
    pub user_id: &'a str,
    pub client_id: &'a str,
    pub scope: Option<&'a str>,
    pub redirect_uri: &'a str,
    pub code_challenge: Option<&'a str>,
    pub code_challenge_method: Option<&'a str>,
    pub ttl_secs: i64,
    /// The authorization request's nonce, returned in the id_token of this code.
    pub nonce: Option<&'a str>,
    /// When the user signed in (a session may be older than the code).
    pub auth_time: i64,
}

/// For tests: a code for user `u` and client `c`, without scope, PKCE or nonce.
#[cfg(test)]
pub(crate) fn test_code(code_hash: SecretHash) -> NewCode<'static> {
    NewCode {
        code_hash,
        user_id: "u",
        client_id: "c",
        scope: None,
        redirect_uri: "https://x/cb",
        code_challenge: None,
        code_challenge_method: None,
        ttl_secs: 600,
        nonce: None,
        auth_time: 0,
    }
}

/// Creates a grant and its authorization code, with an audit entry.
pub fn issue_code(
    db: &impl Db,
    code: &NewCode<'_>,
    origin: Origin<'_>,
    user_email: &str,
) -> Result<(), StoreError> {
    let at = now();
    let grant_id: i64 = db.query_one(
        "INSERT INTO grants (user_id, client_id, scope, created_at, auth_time)
         VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
        &[
            &code.user_id,
            &code.client_id,
            &code.scope,
            &at,
            &code.auth_time,
        ],
        |r| r.get(0),
    )?;
    db.execute_later(
        "INSERT INTO authorization_codes
             (code_hash, grant_id, redirect_uri, code_challenge, code_challenge_method, created_at, expires_at, nonce)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        &[
            &code.code_hash,
            &grant_id,
            &code.redirect_uri,
            &code.code_challenge,
            &code.code_challenge_method,
            &at,
            &at.saturating_add(code.ttl_secs),
            &code.nonce,
        ],
    )?;
    // Amortised housekeeping: each new code deletes a few codes the retention policy no
    // longer keeps (an expired code is kept a while for replay detection). Concurrent
    // logins skip the codes another one is deleting, instead of queueing behind it; and
    // it comes after the inserts, so a login locks its user (the new grant's key) before
    // any code, in the order `user remove` takes them.
    execute_later_skipping_locked(
        db,
        "DELETE FROM authorization_codes WHERE code_hash IN
             (SELECT code_hash FROM authorization_codes WHERE expires_at < ?1 LIMIT 16/* lock */)",
        &[&RETENTION.codes_expired_before(at)],
    )?;
    origin.record(
        db,
        "login_ok",
        user_email,
        code.client_id,
        Some("authorization code issued"),
    )
}

/// What the store knows about a code, for the exchange decision (`None`: unknown code).
/// Locks the code's grant first (see the lock order in `grants`): of concurrent exchanges, each reads
/// the code as the last one left it. (The facts are read by a statement of their own,
/// after the lock: one `SELECT … FOR UPDATE` would read the grant and user from before
/// its wait.)
pub fn find_code(db: &impl Db, code_hash: &SecretHash) -> Result<Option<CodeFacts>, StoreError> {
    lock_rows(
        db,
        "SELECT 1 FROM grants WHERE id =
             (SELECT grant_id FROM authorization_codes WHERE code_hash = ?1)",
        &[code_hash],
    )?;
    db.query_opt(
        "SELECT g.id, u.email, g.client_id, g.scope, c.redirect_uri,
                c.code_challenge, c.code_challenge_method, c.expires_at, c.used_at IS NOT NULL,
                g.revoked_at IS NOT NULL OR u.disabled = 1, g.bound_secret_hash
         FROM authorization_codes c
         JOIN grants g ON g.id = c.grant_id
         JOIN users u ON u.id = g.user_id
         WHERE c.code_hash = ?1",
        &[code_hash],
        |r| {
            Ok(CodeFacts {
                grant_id: r.get(0)?,
                user_email: r.get(1)?,
                client_id: ClientId::new(r.get::<String>(2)?),
                scope: r.get::<Option<String>>(3)?.map(Scope::new),
                redirect_uri: r.get(4)?,
                code_challenge: r.get(5)?,
                code_challenge_method: r.get(6)?,
                expires_at: r.get(7)?,
                used: r.get(8)?,
                grant_dead: r.get(9)?,
                bound_secret_hash: r.get(10)?,
            })
        },
    )
}

/// Carries out an exchange: marks the code used, binds `bind_secret_hash` to the grant
/// when given, stores the tokens (the refresh token only `with_refresh`) and audits
/// `token_issue`. Returns false, having changed nothing, when the code was already used:
/// a concurrent exchange won it after the facts were read (a lost race, which the lock
/// `find_code` takes prevents; this is the second line of defence).
#[must_use = "false: the code was used meanwhile and nothing was issued"]
pub fn use_code(
    db: &impl Db,
    code_hash: &SecretHash,
    grant: GrantRef<'_>,
    bind_secret_hash: Option<&SecretHash>,
    tokens: &NewTokens,
    with_refresh: bool,
    origin: Origin<'_>,
) -> Result<bool, StoreError> {
    let at = now();
    let marked = db.execute(
        "UPDATE authorization_codes SET used_at = ?2 WHERE code_hash = ?1 AND used_at IS NULL",
        &[code_hash, &at],
    )?;
    if marked == 0 {
        return Ok(false);
    }
    if let Some(secret_hash) = bind_secret_hash {
        db.execute(
            "UPDATE grants SET bound_secret_hash = ?2 WHERE id = ?1",
            &[&grant.grant_id, secret_hash],
        )?;
    }
    insert_first_tokens(db, grant.grant_id, tokens, with_refresh, at)?;
    origin.record(
        db,
        "token_issue",
        grant.user_email,
        grant.client_id,
        Some("authorization_code"),
    )?;
    Ok(true)
}
