//! The token endpoint's write jobs for a code exchange and a refresh: read the facts, ask
//! the rule book, carry the decision out, all inside the caller's write transaction.
//!
//! On SQLite one writer runs these jobs one after another. Where they run concurrently
//! (several instances on PostgreSQL), the store's reads lock the code or refresh token
//! first, so racing requests are still decided one after another, each over what the last
//! one wrote. Should a carry-out nevertheless find the row changed under it (a lost race),
//! it changes nothing and the request is decided again over what is stored now: the
//! outcome the same requests have on SQLite (a replayed code, a grace retry or a reused
//! token), never a second set of tokens for one code or one rotation.

use crate::oauth::{
    self, CodeFacts, ExchangeDecision, ExchangeRequest, Presenter, RefreshDecision, RefreshFacts,
    RefreshRequest, Scope, TokenState,
};
use crate::rotation_clock::RotationClock;
use crate::secret::SecretHash;
use crate::store::grants::{self, GrantRef, NewTokens, Origin};
use crate::store::sql::Db;
use crate::store::{self, StoreError};

/// One code exchange: the presented code and request, and the tokens to issue.
pub struct Exchange<'a> {
    pub code_hash: &'a SecretHash,
    pub request: ExchangeRequest<'a>,
    pub tokens: &'a NewTokens,
    pub with_refresh: bool,
    pub origin: Origin<'a>,
}

/// Exchanges the code: its facts, the rule book's decision and its writes.
pub fn exchange(
    db: &impl Db,
    job: &Exchange<'_>,
) -> Result<(ExchangeDecision, Option<CodeFacts>), StoreError> {
    // A code once used stays used, so a second round never decides `Issue`: at most two.
    loop {
        let facts = grants::find_code(db, job.code_hash)?;
        let decision = oauth::decide_exchange(facts.as_ref(), &job.request, store::now());
        let carried_out = match (&decision, &facts) {
            (
                ExchangeDecision::Issue {
                    bind_secret_hash, ..
                },
                Some(code),
            ) => grants::use_code(
                db,
                job.code_hash,
                grant_of(code.grant_id, &code.user_email, &code.client_id),
                bind_secret_hash.as_ref(),
                job.tokens,
                job.with_refresh,
                job.origin,
            )?,
            (ExchangeDecision::RevokeReplayed { .. }, Some(code)) => {
                grants::revoke_after_attack(
                    db,
                    grant_of(code.grant_id, &code.user_email, &code.client_id),
                    job.origin,
                    "code_replay",
                    "grant revoked",
                )?;
                true
            }
            _ => true,
        };
        if carried_out {
            return Ok((decision, facts));
        }
    }
}

/// One refresh: the presented token and request, the tokens to issue, and this process's
/// monotonic record of its rotations (for the grace window).
pub struct Refresh<'a> {
    pub refresh_hash: &'a SecretHash,
    pub presenter: Presenter<'a>,
    pub requested_scope: Option<&'a Scope>,
    pub grace_secs: i64,
    pub rotations: &'a RotationClock,
    pub tokens: &'a NewTokens,
    pub origin: Origin<'a>,
}

/// Refreshes with the token: its facts, the rule book's decision and its writes.
pub fn refresh(
    db: &impl Db,
    job: &Refresh<'_>,
) -> Result<(RefreshDecision, Option<RefreshFacts>), StoreError> {
    // A lost race means the token or its successor was rotated out since the read, and
    // rotated-out stays so: the next round decides over settled rows.
    loop {
        let facts = grants::find_refresh_token(db, job.refresh_hash)?;
        let decision = decide_refresh(job, facts.as_ref());
        let Some(token) = &facts else {
            return Ok((decision, facts));
        };
        if carry_out_refresh(db, job, token, &decision)? {
            return Ok((decision, facts));
        }
    }
}

fn decide_refresh(job: &Refresh<'_>, facts: Option<&RefreshFacts>) -> RefreshDecision {
    let monotonic_elapsed_secs = match facts.map(|token| token.state) {
        Some(TokenState::RotatedOut { rotated_at, .. }) => {
            job.rotations.elapsed_secs(job.refresh_hash, rotated_at)
        }
        _ => None,
    };
    let request = RefreshRequest {
        presenter: job.presenter,
        requested_scope: job.requested_scope,
        grace_secs: job.grace_secs,
        monotonic_elapsed_secs,
    };
    oauth::decide_refresh(facts, &request, store::now())
}

/// Carries out a refresh decision; false when it lost a race and changed nothing.
fn carry_out_refresh(
    db: &impl Db,
    job: &Refresh<'_>,
    token: &RefreshFacts,
    decision: &RefreshDecision,
) -> Result<bool, StoreError> {
    let grant = grant_of(token.grant_id, &token.user_email, &token.client_id);
    let (tokens, origin) = (job.tokens, job.origin);
    Ok(match decision {
        RefreshDecision::Keep { scope, .. } => {
            grants::keep(db, grant, tokens, scope.as_deref(), origin)?;
            true
        }
        RefreshDecision::Rotate { scope, .. } => {
            let rotated = grants::rotate(
                db,
                job.refresh_hash,
                grant,
                tokens,
                scope.as_deref(),
                origin,
            )?;
            if let Some(rotated_at) = rotated {
                job.rotations.record(*job.refresh_hash, rotated_at);
            }
            rotated.is_some()
        }
        RefreshDecision::RotateAgain {
            scope, supersede, ..
        } => grants::rotate_again(
            db,
            job.refresh_hash,
            supersede,
            grant,
            tokens,
            scope.as_deref(),
            origin,
        )?,
        RefreshDecision::RevokeReused { .. } => {
            grants::revoke_after_attack(
                db,
                grant,
                origin,
                "refresh_reuse",
                "rotated-out refresh token reused; grant revoked",
            )?;
            true
        }
        RefreshDecision::Refuse(_) => true,
    })
}

fn grant_of<'a>(
    grant_id: i64,
    user_email: &'a str,
    client_id: &'a oauth::ClientId,
) -> GrantRef<'a> {
    GrantRef {
        grant_id,
        user_email,
        client_id: client_id.as_str(),
    }
}

#[cfg(all(test, feature = "postgres"))]
mod races;
