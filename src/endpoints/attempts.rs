//! Building and recording the token endpoint's attempts for `oauthd client log`. Reasons
//! come from [`AttemptReason`] (the one mapping from refusal types); rows go through the
//! writer's group commit: inside the decision's own job where there is one, otherwise as
//! one detached job that the request does not wait for.

use crate::app::App;
use crate::http::Params;
use crate::oauth::{
    truncate_presented, AttemptReason, CodeFacts, ExchangeDecision, ExchangeRefusal, GrantKind,
    RedirectUri, RefreshDecision,
};
use crate::store::client_log::{self, Attempt};

const TOKEN: &str = "token";

fn token_attempt(client_id: &str, grant: GrantKind, reason: AttemptReason) -> Attempt {
    Attempt {
        client_id: client_id.to_owned(),
        endpoint: TOKEN,
        grant_type: Some(grant.name()),
        outcome: reason.outcome(),
        reason: reason.code(),
        registered: None,
        presented: None,
    }
}

/// A code exchange; a redirect URI mismatch carries both values.
pub fn exchange(
    client_id: &str,
    decision: &ExchangeDecision,
    facts: Option<&CodeFacts>,
    presented: Option<&RedirectUri>,
) -> Attempt {
    let reason = AttemptReason::of_exchange(decision);
    let mut attempt = token_attempt(client_id, GrantKind::AuthorizationCode, reason);
    if matches!(
        decision,
        ExchangeDecision::Refuse(ExchangeRefusal::RedirectMismatch)
    ) {
        attempt.registered = facts.map(|code| code.redirect_uri.clone());
        attempt.presented = presented.map(|uri| truncate_presented(uri.as_str()));
    }
    attempt
}

/// A refresh.
pub fn refresh(client_id: &str, decision: &RefreshDecision) -> Attempt {
    let reason = AttemptReason::of_refresh(decision);
    token_attempt(client_id, GrantKind::RefreshToken, reason)
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
    let attempt = token_attempt(&client_id, grant, reason);
    let store = app.store.clone();
    tokio::spawn(async move {
        if let Err(e) = store
            .write(move |conn| client_log::record(conn, &attempt))
            .await
        {
            tracing::warn!(error = %e, "could not record a client attempt");
        }
    });
}
