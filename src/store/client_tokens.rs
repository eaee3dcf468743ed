//! Client-credentials access tokens (RFC 6749 §4.4): a client acting as itself, with no
//! user and therefore no grant and no refresh token. Stored only as SHA-256 digests.

use crate::oauth::{ClientId, RevocationFacts, Scope, TokenFacts, RETENTION};

use super::sql::Db;
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
    tx: &impl Db,
    token_hash: &SecretHash,
    client_id: &str,
    scope: Option<&str>,
    ttl_secs: i64,
    remote_addr: &str,
) -> Result<(), StoreError> {
    let at = now();
    tx.execute(
        "DELETE FROM client_access_tokens WHERE token_hash IN
             (SELECT token_hash FROM client_access_tokens WHERE expires_at <= ?1 LIMIT ?2)",
        &[&RETENTION.expired_by(at), &EXPIRED_DELETED_PER_ISSUE],
    )?;
    tx.execute(
        "INSERT INTO client_access_tokens (token_hash, client_id, scope, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        &[
            token_hash,
            &client_id,
            &scope,
            &at,
            &at.saturating_add(ttl_secs),
        ],
    )?;
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
    db: &impl Db,
    token_hash: &SecretHash,
) -> Result<Option<(ClientAccessInfo, TokenFacts)>, StoreError> {
    db.query_opt(FIND, &[token_hash], client_token_from_row)
}

/// [`find`] on PostgreSQL, awaited on the server's runtime.
#[cfg(feature = "postgres")]
pub async fn find_awaited(
    reads: &super::pg::ReadLine,
    token_hash: &SecretHash,
) -> Result<Option<(ClientAccessInfo, TokenFacts)>, StoreError> {
    let read = reads.query_opt(FIND, &[token_hash], client_token_from_row);
    read.await
}

const FIND: &str = "SELECT t.client_id, c.name, t.scope, t.created_at, t.expires_at
     FROM client_access_tokens t JOIN clients c ON c.id = t.client_id
     WHERE t.token_hash = ?1";

fn client_token_from_row(
    r: &super::sql::Row<'_>,
) -> Result<(ClientAccessInfo, TokenFacts), StoreError> {
    let info = ClientAccessInfo {
        client_id: ClientId::new(r.get::<String>(0)?),
        client_name: r.get(1)?,
        scope: r.get::<Option<String>>(2)?.map(Scope::new),
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
}

/// What a revocation request presenting this digest needs to know: whose
/// client-credentials token it is (`Unknown`: none).
pub fn find_revocation(
    db: &impl Db,
    token_hash: &SecretHash,
) -> Result<RevocationFacts, StoreError> {
    let owner = db.query_opt(
        "SELECT client_id FROM client_access_tokens WHERE token_hash = ?1",
        &[token_hash],
        |r| r.get::<String>(0),
    )?;
    Ok(owner.map_or(RevocationFacts::Unknown, |owner| {
        RevocationFacts::ClientToken {
            owner: ClientId::new(owner),
        }
    }))
}

/// Carries out `oauth::RevocationDecision::DeleteClientToken`: deletes the token and
/// audits `token_revoke` against its client, inside the caller's write transaction.
pub fn revoke(
    tx: &impl Db,
    token_hash: &SecretHash,
    client_id: &str,
    remote_addr: &str,
) -> Result<(), StoreError> {
    let deleted = tx.execute(
        "DELETE FROM client_access_tokens WHERE token_hash = ?1",
        &[token_hash],
    )?;
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
pub fn revoke_all_of(db: &impl Db, client_id: Option<&str>) -> Result<usize, StoreError> {
    match client_id {
        Some(client_id) => db.execute(
            "DELETE FROM client_access_tokens WHERE client_id = ?1",
            &[&client_id],
        ),
        None => db.execute("DELETE FROM client_access_tokens", &[]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_backends::{on_both_backends, seed_user_and_client};

    fn client_token_verbs(db: &impl Db) {
        seed_user_and_client(db);
        let (one, two) = ([1u8; 32], [2u8; 32]);
        issue(db, &one, "c", Some("read"), 60, "192.0.2.1").expect("issue");
        issue(db, &two, "c", None, 60, "192.0.2.1").expect("issue");
        let (info, facts) = find(db, &one).expect("find").expect("found");
        assert_eq!(
            (info.client_id.as_str(), info.client_name.as_str()),
            ("c", "C")
        );
        assert_eq!(info.scope.as_ref().map(|s| s.as_str()), Some("read"));
        assert_eq!(info.expires_at - info.issued_at, 60);
        assert_eq!(facts.expires_at, Some(info.expires_at));
        assert!(find(db, &[3u8; 32]).expect("find").is_none());
        assert!(matches!(
            find_revocation(db, &one).expect("revocation"),
            RevocationFacts::ClientToken { owner } if owner.as_str() == "c"
        ));
        assert!(matches!(
            find_revocation(db, &[3u8; 32]).expect("revocation"),
            RevocationFacts::Unknown
        ));
        revoke(db, &one, "c", "192.0.2.1").expect("revoke");
        revoke(db, &one, "c", "192.0.2.1").expect("revoke again: nothing");
        assert!(find(db, &one).expect("find").is_none());
        let events = db
            .query_all("SELECT event FROM audit_log ORDER BY id", &[], |r| {
                r.get::<String>(0)
            })
            .expect("audit");
        assert_eq!(events, ["token_issue", "token_issue", "token_revoke"]);
        assert_eq!(revoke_all_of(db, Some("other")).expect("none"), 0);
        assert_eq!(revoke_all_of(db, None).expect("all"), 1);
    }
    on_both_backends!(client_token_verbs);
}
