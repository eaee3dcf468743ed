//! Building and recording the attempts `oauthd client log` shows: at the token endpoint,
//! at the authorization endpoint (and the GroveStreams sign-in API, which issues the same
//! codes) and on the device page. Reasons come from [`AttemptReason`] (the one mapping
//! from refusal types). Rows go through the writer's group commit: inside the decision's
//! own job where there is one, otherwise as one detached job that the request does not
//! wait for. At most [`MAX_DETACHED`] detached jobs are in flight; beyond that a refusal
//! is not logged, so a flood of bad requests queues no unbounded work for the writer.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::app::App;
use crate::error::SignInFailure;
use crate::http::Params;
use crate::oauth::{
    liveness, truncate_presented, AttemptReason, CodeFacts, ExchangeDecision, ExchangeRefusal,
    GrantKind, Liveness, RedirectUri, RefreshDecision, RefreshFacts,
};
use crate::secret::SecretHash;
use crate::signin::UntrustedRequest;
use crate::store::client_log::{self, Attempt};
use crate::store::{self, clients, Conn, StoreError};

const TOKEN: &str = "token";
/// `/oauth/authorize` and `/api/oauth_login`.
pub const AUTHORIZE: &str = "authorize";
/// The device page, where the user approves or denies a device.
pub const DEVICE: &str = "device";

/// Detached attempt writes allowed in flight at once: far more than a client retrying, or
/// a burst of them, keeps queued while the writer syncs; a few hundred KiB at most.
const MAX_DETACHED: usize = 1024;
static DETACHED: InFlight = InFlight::new(MAX_DETACHED);

/// A count of jobs in flight with a ceiling: a slot is taken before the job is queued and
/// given back when its [`Slot`] drops (the job finished, failed or was cancelled).
struct InFlight {
    count: AtomicUsize,
    max: usize,
}

/// One taken place in an [`InFlight`] budget.
struct Slot<'a>(&'a InFlight);

impl InFlight {
    const fn new(max: usize) -> InFlight {
        InFlight {
            count: AtomicUsize::new(0),
            max,
        }
    }

    /// A slot, unless `max` are taken.
    fn try_take(&self) -> Option<Slot<'_>> {
        if self.count.fetch_add(1, Ordering::AcqRel) >= self.max {
            self.count.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Slot(self))
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::AcqRel);
    }
}

fn attempt(
    client_id: &str,
    endpoint: &'static str,
    grant: GrantKind,
    reason: AttemptReason,
) -> Attempt {
    Attempt {
        client_id: client_id.to_owned(),
        endpoint,
        grant_type: Some(grant.name()),
        outcome: reason.outcome(),
        reason: reason.code(),
        registered: None,
        presented: None,
    }
}

/// Whether the presented code or token (`hash`) is a disabled user's: its grant (`grant`:
/// id and whether it is dead) is dead and its user disabled, or, its rows deleted by the
/// revocation, it was remembered when the user was disabled.
fn of_disabled_user(
    conn: &Conn<'_>,
    hash: &SecretHash,
    grant: Option<(i64, bool)>,
) -> Result<bool, StoreError> {
    match grant {
        Some((grant_id, true)) => client_log::grant_user_disabled(conn, grant_id),
        Some((_, false)) => Ok(false),
        None => {
            let facts = client_log::disabled_user_token(conn, hash)?;
            Ok(liveness(facts.as_ref(), store::now()) == Liveness::Live)
        }
    }
}

/// The exchange of the code `code_hash`; a redirect URI mismatch carries both values.
/// Reads, in the exchange's own transaction, whether the code is a disabled user's.
pub fn exchange(
    conn: &Conn<'_>,
    client_id: &str,
    code_hash: &SecretHash,
    decision: &ExchangeDecision,
    facts: Option<&CodeFacts>,
    presented: Option<&RedirectUri>,
) -> Result<Attempt, StoreError> {
    let grant = facts.map(|code| (code.grant_id, code.grant_dead));
    let disabled = of_disabled_user(conn, code_hash, grant)?;
    let reason = AttemptReason::of_exchange(decision).with_user_disabled(disabled);
    let mut attempt = attempt(client_id, TOKEN, GrantKind::AuthorizationCode, reason);
    if matches!(
        decision,
        ExchangeDecision::Refuse(ExchangeRefusal::RedirectMismatch)
    ) {
        attempt.registered = facts.map(|code| code.redirect_uri.clone());
        attempt.presented = presented.map(|uri| truncate_presented(uri.as_str()));
    }
    Ok(attempt)
}

/// The refresh with the token `refresh_hash`, read like [`exchange`].
pub fn refresh(
    conn: &Conn<'_>,
    client_id: &str,
    refresh_hash: &SecretHash,
    decision: &RefreshDecision,
    facts: Option<&RefreshFacts>,
) -> Result<Attempt, StoreError> {
    let grant = facts.map(|token| (token.grant_id, token.grant_dead));
    let disabled = of_disabled_user(conn, refresh_hash, grant)?;
    let reason = AttemptReason::of_refresh(decision).with_user_disabled(disabled);
    Ok(attempt(client_id, TOKEN, GrantKind::RefreshToken, reason))
}

/// A refusal before any decision (client authentication, grant type): recorded for the
/// client the request names, if it is registered, without holding the answer up.
pub fn refused_early(
    app: &App,
    headers: &hyper::HeaderMap,
    params: &Params,
    grant: GrantKind,
    reason: AttemptReason,
) {
    let Some(client_id) = crate::client_auth::named_client(headers, params) else {
        return;
    };
    record_detached(app, attempt(&client_id, TOKEN, grant, reason));
}

/// The authorization's success: its code was issued (recorded in the code's transaction).
pub fn code_issued(client_id: &str) -> Attempt {
    authorization(client_id, AUTHORIZE, AttemptReason::Success)
}

/// An authorization attempt at `endpoint` ([`AUTHORIZE`] or [`DEVICE`]), for the grant
/// it leads to.
fn authorization(client_id: &str, endpoint: &'static str, reason: AttemptReason) -> Attempt {
    let grant = match endpoint {
        DEVICE => GrantKind::DeviceCode,
        _ => GrantKind::AuthorizationCode,
    };
    attempt(client_id, endpoint, grant, reason)
}

/// A refused authorization request of a registered client, recorded detached.
pub fn authorize_refused(app: &App, client_id: &str, reason: AttemptReason) {
    record_detached(app, authorization(client_id, AUTHORIZE, reason));
}

/// An authorization request that cannot be trusted with a redirect: a redirect URI the
/// client did not register (logged with the registered ones and the presented one), or
/// none named where the client has several. A missing or unknown client is not logged:
/// it has no log, and the number of such names is unbounded.
pub fn untrusted(app: &App, params: &Params, untrusted: UntrustedRequest) {
    let reason = match untrusted {
        UntrustedRequest::RedirectUriNotRegistered => AttemptReason::RedirectUriNotRegistered,
        UntrustedRequest::RedirectUriRequired => AttemptReason::RedirectUriRequired,
        UntrustedRequest::MissingClientId | UntrustedRequest::UnknownClient => return,
    };
    let Some(client_id) = params.non_empty("client_id") else {
        return;
    };
    let mut attempt = authorization(client_id, AUTHORIZE, reason);
    attempt.presented = params.non_empty("redirect_uri").map(truncate_presented);
    spawn_detached(app, move |conn| {
        let Some(client) = clients::find(conn, &attempt.client_id)? else {
            return Ok(());
        };
        attempt.registered = Some(client.redirect_uris.join(" "));
        client_log::record(conn, &attempt)
    });
}

/// A refused sign-in at `endpoint` ([`AUTHORIZE`] or [`DEVICE`]): logged only for a
/// disabled user (a wrong password is the user's business, not the link's).
pub fn sign_in_refused(
    app: &App,
    client_id: &str,
    endpoint: &'static str,
    failure: &SignInFailure,
) {
    if matches!(failure, SignInFailure::Disabled) {
        record_detached(
            app,
            authorization(client_id, endpoint, AttemptReason::UserDisabled),
        );
    }
}

/// The user's answer on the device page, recorded in the answer's own transaction.
pub fn device_decided(client_id: &str, approved: bool) -> Attempt {
    let reason = match approved {
        true => AttemptReason::Success,
        false => AttemptReason::DeviceDenied,
    };
    authorization(client_id, DEVICE, reason)
}

fn record_detached(app: &App, attempt: Attempt) {
    spawn_detached(app, move |conn| client_log::record(conn, &attempt));
}

/// Runs `job` on the writer without waiting for it, if fewer than [`MAX_DETACHED`] are in
/// flight; otherwise drops it.
fn spawn_detached(
    app: &App,
    job: impl FnOnce(&Conn<'_>) -> Result<(), StoreError> + Send + 'static,
) {
    let Some(slot) = DETACHED.try_take() else {
        tracing::debug!("client attempt not recorded: too many in flight");
        return;
    };
    let store = app.store.clone();
    tokio::spawn(async move {
        let result = store.write(job).await;
        drop(slot);
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not record a client attempt");
        }
    });
}

#[cfg(test)]
mod in_flight_tests {
    use super::InFlight;

    #[test]
    fn a_full_budget_refuses_until_a_slot_is_given_back() {
        let budget = InFlight::new(2);
        let a = budget.try_take().expect("first");
        let _b = budget.try_take().expect("second");
        assert!(budget.try_take().is_none());
        drop(a);
        assert!(budget.try_take().is_some());
    }

    /// Many threads racing for slots never hold more than the ceiling at once.
    #[test]
    fn racing_takers_never_exceed_the_ceiling() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static BUDGET: InFlight = InFlight::new(8);
        static HELD: AtomicUsize = AtomicUsize::new(0);
        static PEAK: AtomicUsize = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..16 {
                scope.spawn(|| {
                    for _ in 0..2_000 {
                        if let Some(slot) = BUDGET.try_take() {
                            let now = HELD.fetch_add(1, Ordering::AcqRel) + 1;
                            PEAK.fetch_max(now, Ordering::AcqRel);
                            std::thread::yield_now();
                            HELD.fetch_sub(1, Ordering::AcqRel);
                            drop(slot);
                        }
                    }
                });
            }
        });
        let peak = PEAK.load(Ordering::Acquire);
        assert!((1..=8).contains(&peak), "peak {peak}");
        assert_eq!(BUDGET.count.load(Ordering::Acquire), 0);
    }
}
