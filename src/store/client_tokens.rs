//! Client-credentials access tokens (RFC 6749 §4.4): a client acting as itself, with no
//! user and therefore no grant and no refresh token. Stored only as SHA-256 digests.

use rusqlite::{params, Connection, OptionalExtension};

use crate::oauth::{ClientId, RevocationFacts, Scope, TokenFacts, RETENTION};

use super::{audit, now, StoreError};
use crate::secret::SecretHash;

/// Expired tokens deleted per issue: each new token cleans up a few old ones, so the
/// table holds about the live tokens without a housekeeping job.
const EXPIRED_DELETED_PER_ISSUE: i64 = 16;

/// What a live client-credentials token stands for.
#[derive(Debug, Clone)]
pub struct ClientAccessInfo {
    pub client_id: ClientId,
    pub client_name: String,
    pub scope: Option<Scope>,
    pub issued_at: i64,
    pub expires_at: i64,
}

/// Stores a new token for `client_id` and audits `token_issue`, inside the caller's
/// write transaction.
pub fn issue(
    tx: &Connection,
    token_hash: &SecretHash,
    client_id: &str,
    scope: Option<&str>,
    ttl_secs: i64,
    remote_addr: &str,
) -> Result<(), StoreError> {
    let at = now();
    tx.prepare_cached(
        "DELETE FROM client_access_tokens WHERE token_hash IN
             (SELECT token_hash FROM client_access_tokens WHERE expires_at <= ?1 LIMIT ?2)",
    )?
    .execute(params![RETENTION.expired_by(at), EXPIRED_DELETED_PER_ISSUE])?;
    tx.prepare_cached(
        "INSERT INTO client_access_tokens (token_hash, client_id, scope, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        token_hash,
        client_id,
        scope,
        at,
        at.saturating_add(ttl_secs)
    ])?;
    audit::record(
        tx,
        &audit::Event {
            event: "token_issue",
            user_email: None,
            client_id: Some(client_id),
            remote_addr: Some(remote_addr),
            detail: Some("client_credentials"),
        },
    )
}

/// Reads a client-credentials token and its facts (its expiry: it has no grant and no
/// user), whatever they are; whether it is live is `oauth::liveness`'s call.
pub fn find(
    conn: &Connection,
    token_hash: &SecretHash,
) -> Result<Option<(ClientAccessInfo, TokenFacts)>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT t.client_id, c.name, t.scope, t.created_at, t.expires_at
             FROM client_access_tokens t JOIN clients c ON c.id = t.client_id
             WHERE t.token_hash = ?1",
        )?
        .query_row([token_hash], |r| {
            let info = ClientAccessInfo {
                client_id: ClientId::new(r.get::<_, String>(0)?),
                client_name: r.get(1)?,
                scope: r.get::<_, Option<String>>(2)?.map(Scope::new),
                issued_at: r.get(3)?,
                expires_at: r.get(4)?,
            };
            let facts = TokenFacts {
                expires_at: Some(info.expires_at),
                grant_revoked: false,
                rotated_out: false,
                user_disabled: false,
            };
            Ok((info, facts))
        })
        .optional()?)
}

/// What a revocation request presenting this digest needs to know: whose
/// client-credentials token it is (`Unknown`: none).
pub fn find_revocation(
    conn: &Connection,
    token_hash: &SecretHash,
) -> Result<RevocationFacts, StoreError> {
    let owner: Option<String> = conn
        .prepare_cached("SELECT client_id FROM client_access_tokens WHERE token_hash = ?1")?
        .query_row([token_hash], |r| r.get(0))
        .optional()?;
    Ok(owner.map_or(RevocationFacts::Unknown, |owner| {
        RevocationFacts::ClientToken {
            owner: ClientId::new(owner),
        }
    }))
}

/// Carries out `oauth::RevocationDecision::DeleteClientToken`: deletes the token and
/// audits `token_revoke` against its client, inside the caller's write transaction.
pub fn revoke(
    tx: &Connection,
    token_hash: &SecretHash,
    client_id: &str,
    remote_addr: &str,
) -> Result<(), StoreError> {
    let deleted = tx
        .prepare_cached("DELETE FROM client_access_tokens WHERE token_hash = ?1")?
        .execute([token_hash])?;
    if deleted == 0 {
        return Ok(());
    }
    audit::record(
        tx,
        &audit::Event {
            event: "token_revoke",
            user_email: None,
            client_id: Some(client_id),
            remote_addr: Some(remote_addr),
            detail: Some("client_credentials"),
        },
    )
}

/// Deletes every client-credentials token of `client_id` (`None`: of every client), for
/// `oauthd token revoke`. Returns how many.
pub fn revoke_all_of(conn: &Connection, client_id: Option<&str>) -> Result<usize, StoreError> {
    Ok(match client_id {
        Some(client_id) => conn.execute(
            "DELETE FROM client_access_tokens WHERE client_id = ?1",
            [client_id],
        )?,
        None => conn.execute("DELETE FROM client_access_tokens", [])?,
    })
}
