//! Revocation: by a client of one of its tokens (RFC 7009), of a whole grant, and in bulk
//! by user, client or everything (admin).

use rusqlite::{params, Connection, OptionalExtension};

use super::super::{now, StoreError};
use super::{GrantRef, Origin, SecretHash};
use crate::oauth::{ClientId, RevocationDecision, RevocationFacts};

/// What the store knows about a token presented for revocation (RFC 7009), whichever
/// client it belongs to: the rule book decides what to do with it.
pub fn find_revocation(
    conn: &Connection,
    token_hash: &SecretHash,
) -> Result<RevocationFacts, StoreError> {
    // Refresh and access tokens are told apart by `kind`; were a digest in both tables,
    // the refresh token would be the one read.
    let found = conn
        .prepare_cached(
            "SELECT 1 AS kind, g.id, g.client_id, u.email FROM refresh_tokens r
             JOIN grants g ON g.id = r.grant_id JOIN users u ON u.id = g.user_id
             WHERE r.token_hash = ?1
             UNION ALL
             SELECT 0, g.id, g.client_id, u.email FROM access_tokens a
             JOIN grants g ON g.id = a.grant_id JOIN users u ON u.id = g.user_id
             WHERE a.token_hash = ?1
             ORDER BY kind DESC LIMIT 1",
        )?
        .query_row([token_hash], |r| {
            let (grant_id, user_email) = (r.get(1)?, r.get(3)?);
            let owner = ClientId::new(r.get::<_, String>(2)?);
            Ok(if r.get::<_, bool>(0)? {
                RevocationFacts::Refresh {
                    grant_id,
                    owner,
                    user_email,
                }
            } else {
                RevocationFacts::Access { owner, user_email }
            })
        })
        .optional()?;
    Ok(found.unwrap_or(RevocationFacts::Unknown))
}

/// Carries out a revocation decision for the token `token_hash` presented by `client_id`
/// and audits `token_revoke` against `user_email` (the token's user), unless the decision
/// is to do nothing.
pub fn revoke_token(
    tx: &Connection,
    token_hash: &SecretHash,
    decision: RevocationDecision,
    user_email: &str,
    client_id: &str,
    origin: Origin<'_>,
) -> Result<(), StoreError> {
    match decision {
        RevocationDecision::RevokeGrant { grant_id } => revoke_grant(tx, grant_id)?,
        RevocationDecision::DeleteAccessToken => {
            tx.prepare_cached("DELETE FROM access_tokens WHERE token_hash = ?1")?
                .execute([token_hash])?;
        }
        RevocationDecision::DeleteClientToken => {
            return super::super::client_tokens::revoke(
                tx,
                token_hash,
                client_id,
                origin.remote_addr,
            );
        }
        RevocationDecision::Nothing => return Ok(()),
    }
    origin.record(tx, "token_revoke", user_email, client_id, None)
}

/// Revokes a grant because of a detected attack — a replayed code (`code_replay`) or a
/// reused refresh token (`refresh_reuse`) — and audits `event`.
pub fn revoke_after_attack(
    tx: &Connection,
    grant: GrantRef<'_>,
    origin: Origin<'_>,
    event: &str,
    detail: &str,
) -> Result<(), StoreError> {
    revoke_grant(tx, grant.grant_id)?;
    origin.record(tx, event, grant.user_email, grant.client_id, Some(detail))
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
