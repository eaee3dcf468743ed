//! The decision of a refresh (RFC 6749 §6, RFC 9700 §4.14): keep the refresh token
//! (confidential clients, grants bound to a public client's secret) or rotate it (other
//! public clients), with the grace rule for a client that lost an answer and reuse
//! detection that revokes the whole grant.

use super::{narrow_scope, ClientId, Presenter, Scope, SecretHash};

/// What the store knows about a presented refresh token and its grant.
#[derive(Debug, Clone)]
pub struct RefreshFacts {
    pub grant_id: i64,
    pub client_id: ClientId,
    pub client_public: bool,
    pub scope: Option<Scope>,
    pub bound_secret_hash: Option<Vec<u8>>,
    /// `None`: never expires.
    pub expires_at: Option<i64>,
    /// The grant was revoked or its user is disabled.
    pub grant_dead: bool,
    pub state: TokenState,
    /// For the audit trail only; no rule reads it.
    pub user_email: String,
}

/// Where a refresh token stands in its grant's rotation chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenState {
    /// Never presented (or never rotated: kept tokens stay live).
    Live,
    /// Replaced at `rotated_at` (first rotation time, never moved by grace retries).
    RotatedOut {
        rotated_at: i64,
        successor: Successor,
    },
}

/// The token that replaced a rotated-out one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Successor {
    /// Live and never presented: a grace retry may replace it.
    Unused(SecretHash),
    /// Presented itself since, superseded by a grace retry (then it is rotated-out too,
    /// and presenting it is reuse), or gone with its grant.
    UsedOrGone,
}

/// What the client sent with the refresh token, and the server's grace setting.
#[derive(Debug, Clone, Copy)]
pub struct RefreshRequest<'a> {
    pub presenter: Presenter<'a>,
    pub requested_scope: Option<&'a Scope>,
    pub grace_secs: i64,
    /// Seconds since the presented token's rotation by a monotonic clock, when this
    /// process carried out that rotation and remembers it; else the wall clock is used.
    pub monotonic_elapsed_secs: Option<i64>,
}

/// `scope` is the scope of the access token to issue: the grant's, or the narrower one
/// requested (RFC 6749 §6). The refresh token keeps the grant's whole scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshDecision {
    /// Issue an access token; the answer repeats the presented refresh token.
    Keep {
        grant_id: i64,
        scope: Option<String>,
    },
    /// Issue an access token and a successor; the presented token becomes rotated-out.
    Rotate {
        grant_id: i64,
        scope: Option<String>,
    },
    /// Grace retry of a rotated-out token: `supersede` (its unused successor) stops
    /// working, and a new successor is issued.
    RotateAgain {
        grant_id: i64,
        scope: Option<String>,
        supersede: SecretHash,
    },
    /// A rotated-out token presented outside the grace rule: revoke the whole grant and
    /// audit `refresh_reuse`.
    RevokeReused { grant_id: i64 },
    /// Refuse; nothing changes.
    Refuse(RefreshRefusal),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshRefusal {
    /// No such token, or its grant is revoked or its user disabled.
    Unknown,
    Expired,
    WrongClient,
    /// The grant is bound to a secret the presenter did not repeat.
    BoundSecretRequired,
    ScopeExceeded,
}

/// Decides a refresh. `facts` is `None` for an unknown token.
pub fn decide_refresh(
    facts: Option<&RefreshFacts>,
    request: &RefreshRequest<'_>,
    now: i64,
) -> RefreshDecision {
    use RefreshDecision::Refuse;
    let Some(token) = facts else {
        return Refuse(RefreshRefusal::Unknown);
    };
    if token.grant_dead {
        return Refuse(RefreshRefusal::Unknown);
    }
    if token.expires_at.is_some_and(|e| e <= now) {
        return Refuse(RefreshRefusal::Expired);
    }
    let presenter = request.presenter;
    if token.client_id.as_str() != presenter.client_id {
        return Refuse(RefreshRefusal::WrongClient);
    }
    if !presenter.proves_bound_secret(token.bound_secret_hash.as_deref()) {
        return Refuse(RefreshRefusal::BoundSecretRequired);
    }
    let Ok(scope) = narrow_scope(
        token.scope.as_ref().map(Scope::as_str),
        request.requested_scope,
    ) else {
        return Refuse(RefreshRefusal::ScopeExceeded);
    };
    let grant_id = token.grant_id;
    let rotates = token.client_public && token.bound_secret_hash.is_none();
    if !rotates {
        return RefreshDecision::Keep { grant_id, scope };
    }
    let elapsed = |rotated_at: i64| {
        request
            .monotonic_elapsed_secs
            .unwrap_or(now.saturating_sub(rotated_at))
    };
    match token.state {
        TokenState::Live => RefreshDecision::Rotate { grant_id, scope },
        TokenState::RotatedOut {
            rotated_at,
            successor: Successor::Unused(successor),
        } if in_grace(elapsed(rotated_at), request.grace_secs) => RefreshDecision::RotateAgain {
            grant_id,
            scope,
            supersede: successor,
        },
        TokenState::RotatedOut { .. } => RefreshDecision::RevokeReused { grant_id },
    }
}

/// Whether a rotated-out token `elapsed` seconds after its rotation is still within the
/// grace window. Negative elapsed time (a rotation in the future by the wall clock) means
/// the clock jumped back since: that is outside the grace, or a backward jump would
/// extend the window by its size.
fn in_grace(elapsed: i64, grace_secs: i64) -> bool {
    (0..=grace_secs).contains(&elapsed)
}

#[cfg(test)]
mod tests {
    use super::RefreshDecision::{Keep, Refuse, RevokeReused, Rotate, RotateAgain};
    use super::*;

    const NOW: i64 = 1_000_000;
    const GRACE: i64 = 300;
    const SECRET: SecretHash = [7; 32];
    const OTHER_SECRET: SecretHash = [8; 32];
    const SUCCESSOR: SecretHash = [9; 32];

    #[derive(Clone, Copy, Debug)]
    enum Client {
        Confidential,
        Public,
        PublicBound,
    }

    fn facts(client: Client, state: TokenState) -> RefreshFacts {
        RefreshFacts {
            grant_id: 7,
            client_id: "a".into(),
            client_public: !matches!(client, Client::Confidential),
            scope: Some("read write".into()),
            bound_secret_hash: matches!(client, Client::PublicBound).then(|| SECRET.to_vec()),
            expires_at: None,
            grant_dead: false,
            state,
            user_email: "u@x".into(),
        }
    }

    fn own(client: Client) -> Presenter<'static> {
        Presenter {
            client_id: "a",
            public: !matches!(client, Client::Confidential),
            secret_hash: match client {
                Client::Public => None,
                Client::Confidential | Client::PublicBound => Some(&SECRET),
            },
        }
    }

    fn request(presenter: Presenter<'_>) -> RefreshRequest<'_> {
        RefreshRequest {
            presenter,
            requested_scope: None,
            grace_secs: GRACE,
            monotonic_elapsed_secs: None,
        }
    }

    fn rotated(ago: i64, successor: Successor) -> TokenState {
        TokenState::RotatedOut {
            rotated_at: NOW - ago,
            successor,
        }
    }

    /// One row per state that matters: client kind × token state × grace × successor state.
    #[test]
    fn refresh_decisions() {
        use Client::*;
        let scope = Some("read write".to_owned());
        let keep = Keep {
            grant_id: 7,
            scope: scope.clone(),
        };
        let rotate = Rotate {
            grant_id: 7,
            scope: scope.clone(),
        };
        let again = RotateAgain {
            grant_id: 7,
            scope: scope.clone(),
            supersede: SUCCESSOR,
        };
        let reuse = RevokeReused { grant_id: 7 };
        let unused = Successor::Unused(SUCCESSOR);
        let used = Successor::UsedOrGone;
        let table: &[(Client, TokenState, RefreshDecision)] = &[
            (Confidential, TokenState::Live, keep.clone()),
            (PublicBound, TokenState::Live, keep.clone()),
            (Public, TokenState::Live, rotate),
            // Grace retry: within the window, while the successor is unused.
            (Public, rotated(0, unused), again.clone()),
            (Public, rotated(GRACE, unused), again),
            // Outside the window, or after the successor was used (or superseded): reuse.
            (Public, rotated(GRACE + 1, unused), reuse.clone()),
            // (A successor superseded by a grace retry is rotated-out without a live
            // successor of its own: this row. Presenting it is reuse.)
            (Public, rotated(0, used), reuse.clone()),
            (Public, rotated(GRACE + 1, used), reuse.clone()),
            // A rotation "in the future": the clock jumped back; no grace.
            (Public, rotated(-1, unused), reuse.clone()),
            (Public, rotated(-3600, unused), reuse),
        ];
        for (client, state, expected) in table {
            assert_eq!(
                &decide_refresh(Some(&facts(*client, *state)), &request(own(*client)), NOW),
                expected,
                "{client:?} token {state:?}"
            );
        }
    }

    /// Where this process saw the rotation, its monotonic clock decides, whatever the wall
    /// clock says.
    #[test]
    fn the_monotonic_elapsed_time_overrides_the_wall_clock() {
        let token = facts(Client::Public, rotated(0, Successor::Unused(SUCCESSOR)));
        let with = |elapsed, wall_ago| {
            let token = RefreshFacts {
                state: rotated(wall_ago, Successor::Unused(SUCCESSOR)),
                ..token.clone()
            };
            let request = RefreshRequest {
                monotonic_elapsed_secs: Some(elapsed),
                ..request(own(Client::Public))
            };
            matches!(
                decide_refresh(Some(&token), &request, NOW),
                RotateAgain { .. }
            )
        };
        assert!(with(10, -3600), "clock set back an hour: still 10 s");
        assert!(with(10, 3600), "clock set forward an hour: still 10 s");
        assert!(
            !with(GRACE + 1, 0),
            "the wall clock stood still: still past the grace"
        );
        assert!(!with(-1, 0));
    }

    /// Parallel presentation: copies of one token are decided one after the other (the
    /// writer serialises them), each seeing the writes of the one before. Carrying the
    /// decisions out on a small model of the rotation chain leaves exactly one live
    /// successor, and presenting any losing successor afterwards is reuse.
    #[test]
    fn racing_copies_leave_one_live_successor_and_every_loser_is_reuse() {
        use std::collections::HashMap;
        // token → (rotated_at, successor); a token without an entry in `rotated` is live.
        let mut rotated: HashMap<SecretHash, (i64, Option<SecretHash>)> = HashMap::new();
        let state = |rotated: &HashMap<SecretHash, (i64, Option<SecretHash>)>,
                     token: &SecretHash| match rotated.get(token) {
            None => TokenState::Live,
            Some((at, successor)) => TokenState::RotatedOut {
                rotated_at: *at,
                successor: successor
                    .filter(|s| !rotated.contains_key(s))
                    .map_or(Successor::UsedOrGone, Successor::Unused),
            },
        };
        let original: SecretHash = [0; 32];
        let mut issued = Vec::new();
        for copy in 1..=20u8 {
            let token = facts(Client::Public, state(&rotated, &original));
            let successor: SecretHash = [copy; 32];
            match decide_refresh(Some(&token), &request(own(Client::Public)), NOW) {
                Rotate { .. } => {
                    rotated.insert(original, (NOW, Some(successor)));
                }
                RotateAgain { supersede, .. } => {
                    rotated.insert(supersede, (NOW, None));
                    rotated.insert(original, (NOW, Some(successor)));
                }
                other => panic!("copy {copy}: {other:?}"),
            }
            issued.push(successor);
        }
        let live: Vec<&SecretHash> = issued
            .iter()
            .filter(|t| state(&rotated, t) == TokenState::Live)
            .collect();
        assert_eq!(live, [&[20u8; 32]], "only the last successor stays live");
        for loser in &issued[..19] {
            let token = facts(Client::Public, state(&rotated, loser));
            assert_eq!(
                decide_refresh(Some(&token), &request(own(Client::Public)), NOW),
                RevokeReused { grant_id: 7 }
            );
        }
    }

    #[test]
    fn a_narrower_scope_is_answered_for_every_kind_of_client() {
        for client in [Client::Confidential, Client::PublicBound] {
            let narrower = RefreshRequest {
                requested_scope: Some(&Scope::new("write")),
                ..request(own(client))
            };
            assert_eq!(
                decide_refresh(Some(&facts(client, TokenState::Live)), &narrower, NOW),
                Keep {
                    grant_id: 7,
                    scope: Some("write".into())
                }
            );
        }
        let narrower = RefreshRequest {
            requested_scope: Some(&Scope::new("read")),
            ..request(own(Client::Public))
        };
        let rotated_out = rotated(0, Successor::Unused(SUCCESSOR));
        assert_eq!(
            decide_refresh(Some(&facts(Client::Public, rotated_out)), &narrower, NOW),
            RotateAgain {
                grant_id: 7,
                scope: Some("read".into()),
                supersede: SUCCESSOR
            }
        );
    }

    #[test]
    fn refusals_change_nothing_whatever_the_token_state() {
        let states = [
            TokenState::Live,
            rotated(0, Successor::Unused(SUCCESSOR)),
            rotated(0, Successor::UsedOrGone),
        ];
        for state in states {
            let public = facts(Client::Public, state);
            let bound = facts(Client::PublicBound, state);
            let other = Presenter {
                client_id: "b",
                ..own(Client::Public)
            };
            let wrong_secret = Presenter {
                secret_hash: Some(&OTHER_SECRET),
                ..own(Client::PublicBound)
            };
            let wider = RefreshRequest {
                requested_scope: Some(&Scope::new("read admin")),
                ..request(own(Client::Public))
            };
            let cases = [
                (&public, request(other), RefreshRefusal::WrongClient),
                (
                    &bound,
                    request(own(Client::Public)),
                    RefreshRefusal::BoundSecretRequired,
                ),
                (
                    &bound,
                    request(wrong_secret),
                    RefreshRefusal::BoundSecretRequired,
                ),
                (&public, wider, RefreshRefusal::ScopeExceeded),
            ];
            for (facts, request, refusal) in cases {
                assert_eq!(
                    decide_refresh(Some(facts), &request, NOW),
                    Refuse(refusal),
                    "{state:?}"
                );
            }
        }
        let presenter = own(Client::Public);
        assert_eq!(
            decide_refresh(None, &request(presenter), NOW),
            Refuse(RefreshRefusal::Unknown)
        );
        let dead = RefreshFacts {
            grant_dead: true,
            ..facts(Client::Public, TokenState::Live)
        };
        assert_eq!(
            decide_refresh(Some(&dead), &request(presenter), NOW),
            Refuse(RefreshRefusal::Unknown)
        );
        let expired = RefreshFacts {
            expires_at: Some(NOW),
            ..facts(Client::Public, TokenState::Live)
        };
        assert_eq!(
            decide_refresh(Some(&expired), &request(presenter), NOW),
            Refuse(RefreshRefusal::Expired)
        );
    }
}
