//! Revocation: by a client of one of its tokens (RFC 7009), of a whole grant, and in bulk
//! by user, client or everything (admin).

use super::super::sql::{Db, Param};
use super::super::{now, StoreError};
use super::{GrantRef, Origin, SecretHash};
use crate::oauth::{ClientId, RevocationDecision, RevocationFacts};

/// What the store knows about a token presented for revocation (RFC 7009), whichever
/// client it belongs to: the rule book decides what to do with it.
pub fn find_revocation(
    db: &impl Db,
    token_hash: &SecretHash,
) -> Result<RevocationFacts, StoreError> {
    // Refresh and access tokens are told apart by `kind`; were a digest in both tables,
    // the refresh token would be the one read.
    let found = db.query_opt(
        "SELECT 1 AS kind, g.id, g.client_id, u.email FROM refresh_tokens r
         JOIN grants g ON g.id = r.grant_id JOIN users u ON u.id = g.user_id
         WHERE r.token_hash = ?1
         UNION ALL
         SELECT 0, g.id, g.client_id, u.email FROM access_tokens a
         JOIN grants g ON g.id = a.grant_id JOIN users u ON u.id = g.user_id
         WHERE a.token_hash = ?1
         ORDER BY kind DESC LIMIT 1",
        &[token_hash],
        |r| {
            let (grant_id, user_email) = (r.get(1)?, r.get(3)?);
            let owner = ClientId::new(r.get::<String>(2)?);
            Ok(if r.get::<bool>(0)? {
                RevocationFacts::Refresh {
                    grant_id,
                    owner,
                    user_email,
                }
            } else {
                RevocationFacts::Access { owner, user_email }
            })
        },
    )?;
    Ok(found.unwrap_or(RevocationFacts::Unknown))
}

/// Carries out a revocation decision for the token `token_hash` presented by `client_id`
/// and audits `token_revoke` against `user_email` (the token's user), unless the decision
/// is to do nothing.
pub fn revoke_token(
    db: &impl Db,
    token_hash: &SecretHash,
    decision: RevocationDecision,
    user_email: &str,
    client_id: &str,
    origin: Origin<'_>,
) -> Result<(), StoreError> {
    match decision {
        RevocationDecision::RevokeGrant { grant_id } => revoke_grant(db, grant_id)?,
        RevocationDecision::DeleteAccessToken => {
            db.execute(
                "DELETE FROM access_tokens WHERE token_hash = ?1",
                &[token_hash],
            )?;
        }
        RevocationDecision::DeleteClientToken => {
            return super::super::client_tokens::revoke(
                db,
                token_hash,
                client_id,
                origin.remote_addr,
            );
        }
        RevocationDecision::Nothing => return Ok(()),
    }
    origin.record(db, "token_revoke", user_email, client_id, None)
}

/// Revokes a grant because of a detected attack — a replayed code (`code_replay`) or a
/// reused refresh token (`refresh_reuse`) — and audits `event`.
pub fn revoke_after_attack(
    db: &impl Db,
    grant: GrantRef<'_>,
    origin: Origin<'_>,
    event: &str,
    detail: &str,
) -> Result<(), StoreError> {
    revoke_grant(db, grant.grant_id)?;
    origin.record(db, event, grant.user_email, grant.client_id, Some(detail))
}

/// Marks a grant revoked and deletes its tokens and unused codes' power: the code row is
/// kept (marked used) so a later replay is still recognised.
pub fn revoke_grant(db: &impl Db, grant_id: i64) -> Result<(), StoreError> {
    let at = now();
    db.execute(
        "UPDATE grants SET revoked_at = coalesce(revoked_at, ?2) WHERE id = ?1",
        &[&grant_id, &at],
    )?;
    db.execute(
        "DELETE FROM access_tokens WHERE grant_id = ?1",
        &[&grant_id],
    )?;
    db.execute(
        "DELETE FROM refresh_tokens WHERE grant_id = ?1",
        &[&grant_id],
    )?;
    db.execute(
        "UPDATE authorization_codes SET used_at = coalesce(used_at, ?2) WHERE grant_id = ?1",
        &[&grant_id, &at],
    )?;
    Ok(())
}

/// Revokes every grant `sql_select_ids` (with its parameters) selects; how many.
fn revoke_grants_matching(
    db: &impl Db,
    sql_select_ids: &str,
    params: &[&dyn Param],
) -> Result<usize, StoreError> {
    let ids: Vec<i64> = db.query_all(sql_select_ids, params, |r| r.get(0))?;
    for id in &ids {
        revoke_grant(db, *id)?;
    }
    Ok(ids.len())
}

/// Revokes every live grant of a user. Call inside the caller's transaction.
pub fn revoke_where_user(db: &impl Db, user_id: &str) -> Result<usize, StoreError> {
    revoke_grants_matching(
        db,
        "SELECT id FROM grants WHERE user_id = ?1 AND revoked_at IS NULL",
        &[&user_id],
    )
}

/// Revokes every live grant of a client. Call inside the caller's transaction.
pub fn revoke_where_client(db: &impl Db, client_id: &str) -> Result<usize, StoreError> {
    revoke_grants_matching(
        db,
        "SELECT id FROM grants WHERE client_id = ?1 AND revoked_at IS NULL",
        &[&client_id],
    )
}

/// Revokes every live grant. Call inside the caller's transaction.
pub fn revoke_all(db: &impl Db) -> Result<usize, StoreError> {
    revoke_grants_matching(db, "SELECT id FROM grants WHERE revoked_at IS NULL", &[])
}
