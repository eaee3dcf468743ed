//! Read-only lookups of tokens with their facts: bearer validation, introspection,
//! `oauthd check`. Whether a token is live is `oauth::liveness`'s call, not the SQL's.

use super::super::orgs::Membership;
use super::super::sql::{Db, Row};
use super::super::StoreError;
use super::SecretHash;
use crate::oauth::{ClientId, Scope, TokenFacts};

/// What an access or refresh token stands for.
#[derive(Debug, Clone)]
pub struct AccessInfo {
    pub user_id: String,
    pub email: String,
    pub name: Option<String>,
    pub client_id: ClientId,
    pub scope: Option<Scope>,
    pub issued_at: i64,
    /// 0 for a refresh token that never expires.
    pub expires_at: i64,
}

/// Reads an access token and the facts that say whether it is live (expiry, grant
/// revoked, user disabled), whatever they are.
pub fn find_access(
    db: &impl Db,
    token_hash: &SecretHash,
) -> Result<Option<(AccessInfo, TokenFacts)>, StoreError> {
    read_token(db, FIND_ACCESS, token_hash)
}

const FIND_ACCESS: &str =
    "SELECT u.id, u.email, u.name, g.client_id, coalesce(a.scope, g.scope), a.created_at,
            a.expires_at, g.revoked_at IS NOT NULL, 0, u.disabled
     FROM access_tokens a
     JOIN grants g ON g.id = a.grant_id
     JOIN users u ON u.id = g.user_id
     WHERE a.token_hash = ?1";

/// [`find_token`] on PostgreSQL, awaited on the server's runtime.
#[cfg(feature = "postgres")]
pub async fn find_token_awaited(
    reads: &crate::store::pg::ReadLine,
    kind: TokenKind,
    token_hash: &SecretHash,
) -> Result<Option<(AccessInfo, TokenFacts)>, StoreError> {
    let read = reads.query_opt(kind.lookup(), &[token_hash], access_info_from_row);
    read.await
}

/// The two kinds of tokens a user's grant issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

impl TokenKind {
    /// The lookup of a token of this kind.
    fn lookup(self) -> &'static str {
        match self {
            TokenKind::Access => FIND_ACCESS,
            TokenKind::Refresh => FIND_REFRESH,
        }
    }
}

/// Reads an access or refresh token (rotated-out or not) and its facts, whatever they
/// are: for introspection.
pub fn find_token(
    db: &impl Db,
    kind: TokenKind,
    token_hash: &SecretHash,
) -> Result<Option<(AccessInfo, TokenFacts)>, StoreError> {
    read_token(db, kind.lookup(), token_hash)
}

/// An access token's facts with its user's organization memberships.
pub type MemberAccess = (AccessInfo, Vec<Membership>);

/// [`find_access`] with the organizations of the token's user: the bearer check of every
/// resource request, in one statement where statements cross a network (one round trip
/// instead of two on PostgreSQL).
/// The memberships come in name order, as `orgs::memberships_of` lists them.
pub fn find_access_with_memberships(
    db: &impl Db,
    token_hash: &SecretHash,
) -> Result<Option<(MemberAccess, TokenFacts)>, StoreError> {
    if !db.statements_cross_a_network() {
        // In process two small statements cost less than the join.
        let Some((info, facts)) = find_access(db, token_hash)? else {
            return Ok(None);
        };
        let memberships = super::super::orgs::memberships_of(db, &info.user_id)?;
        return Ok(Some(((info, memberships), facts)));
    }
    let rows = db.query_all(
        ACCESS_WITH_MEMBERSHIPS,
        &[token_hash],
        access_with_membership,
    )?;
    Ok(with_memberships(rows))
}

/// [`find_access_with_memberships`] on PostgreSQL, awaited on the server's runtime.
#[cfg(feature = "postgres")]
pub async fn find_access_with_memberships_awaited(
    reads: &crate::store::pg::ReadLine,
    token_hash: &SecretHash,
) -> Result<Option<(MemberAccess, TokenFacts)>, StoreError> {
    // Bound first: the parameter list must not live across the await.
    let read = reads.query_all(
        ACCESS_WITH_MEMBERSHIPS,
        &[token_hash],
        access_with_membership,
    );
    Ok(with_memberships(read.await?))
}

/// A token with its user's memberships, one row per membership (one row with none).
const ACCESS_WITH_MEMBERSHIPS: &str =
    "SELECT u.id, u.email, u.name, g.client_id, coalesce(a.scope, g.scope), a.created_at,
            a.expires_at, g.revoked_at IS NOT NULL, 0, u.disabled, o.id, o.name, m.role
     FROM access_tokens a
     JOIN grants g ON g.id = a.grant_id
     JOIN users u ON u.id = g.user_id
     LEFT JOIN memberships m ON m.user_id = u.id
     LEFT JOIN organizations o ON o.id = m.org_id
     WHERE a.token_hash = ?1
     ORDER BY o.name COLLATE NOCASE";

/// One row of [`ACCESS_WITH_MEMBERSHIPS`].
type AccessRow = ((AccessInfo, TokenFacts), Option<Membership>);

fn access_with_membership(r: &Row<'_>) -> Result<AccessRow, StoreError> {
    let membership = match r.get::<Option<String>>(10)? {
        Some(id) => Some(Membership {
            id,
            name: r.get(11)?,
            role: r.get(12)?,
        }),
        None => None,
    };
    Ok((access_info_from_row(r)?, membership))
}

/// The token of the first row with the memberships of all rows; `None` without rows.
fn with_memberships(rows: Vec<AccessRow>) -> Option<(MemberAccess, TokenFacts)> {
    let mut rows = rows.into_iter();
    let ((info, facts), first) = rows.next()?;
    let memberships = first
        .into_iter()
        .chain(rows.filter_map(|(_, membership)| membership))
        .collect();
    Some(((info, memberships), facts))
}

/// Runs one of the token lookups (`sql` selects the columns [`access_info_from_row`]
/// reads, with the digest as `?1`).
fn read_token(
    db: &impl Db,
    sql: &str,
    token_hash: &SecretHash,
) -> Result<Option<(AccessInfo, TokenFacts)>, StoreError> {
    db.query_opt(sql, &[token_hash], access_info_from_row)
}

/// Reads the columns both token lookups select, in their order.
fn access_info_from_row(r: &Row<'_>) -> Result<(AccessInfo, TokenFacts), StoreError> {
    let expires_at: Option<i64> = r.get(6)?;
    let info = AccessInfo {
        user_id: r.get(0)?,
        email: r.get(1)?,
        name: r.get(2)?,
        client_id: ClientId::new(r.get::<String>(3)?),
        scope: r.get::<Option<String>>(4)?.map(Scope::new),
        issued_at: r.get(5)?,
        expires_at: expires_at.unwrap_or_default(),
    };
    let facts = TokenFacts {
        expires_at,
        grant_revoked: r.get(7)?,
        rotated_out: r.get(8)?,
        user_disabled: r.get(9)?,
    };
    Ok((info, facts))
}

/// A refresh token (rotated-out or not) and its facts, for introspection.
const FIND_REFRESH: &str =
    "SELECT u.id, u.email, u.name, g.client_id, g.scope, r.created_at, r.expires_at,
            g.revoked_at IS NOT NULL, r.rotated_at IS NOT NULL, u.disabled
     FROM refresh_tokens r
     JOIN grants g ON g.id = r.grant_id
     JOIN users u ON u.id = g.user_id
     WHERE r.token_hash = ?1";

/// Distinct sets of token facts, each with how many tokens share it.
pub type FactCounts = Vec<(TokenFacts, i64)>;

/// The facts of every access and refresh token, grouped (each distinct set of facts with
/// how many tokens share it), for `oauthd check` to count the live ones.
pub fn token_facts_counts(db: &impl Db) -> Result<(FactCounts, FactCounts), StoreError> {
    let read = |sql: &str| -> Result<FactCounts, StoreError> {
        db.query_all(sql, &[], |r| {
            Ok((
                TokenFacts {
                    expires_at: r.get(0)?,
                    grant_revoked: r.get(1)?,
                    rotated_out: r.get(2)?,
                    user_disabled: false,
                },
                r.get(3)?,
            ))
        })
    };
    let access = read(
        "SELECT a.expires_at, g.revoked_at IS NOT NULL, 0, count(*)
         FROM access_tokens a JOIN grants g ON g.id = a.grant_id GROUP BY 1, 2",
    )?;
    let refresh = read(
        "SELECT r.expires_at, g.revoked_at IS NOT NULL, r.rotated_at IS NOT NULL, count(*)
         FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id GROUP BY 1, 2, 3",
    )?;
    Ok((access, refresh))
}
