//! The grant verbs on every backend: one code's life from issue to revocation, with its
//! tokens refreshed, kept and rotated, read back through the lookups.

use super::*;
use crate::oauth::{RevocationFacts, Successor, TokenState};
use crate::store::test_backends::{on_both_backends, seed_user_and_client};

const ORIGIN: Origin<'static> = Origin {
    remote_addr: "test",
};

const GRANT_EMAIL: &str = "u@x.org";

fn tokens(access: u8, refresh: u8) -> NewTokens {
    NewTokens {
        access_hash: [access; 32],
        access_ttl_secs: 60,
        refresh_hash: [refresh; 32],
        refresh_ttl_secs: None,
    }
}

/// Issues code `[1; 32]` for user `u` and client `c` (a fresh grant); returns its id.
pub(super) fn issue_test_code(db: &impl Db) -> i64 {
    issue_code(
        db,
        &NewCode {
            scope: Some("openid"),
            nonce: Some("n"),
            auth_time: 5,
            ..codes::test_code([1; 32])
        },
        ORIGIN,
        GRANT_EMAIL,
    )
    .expect("issue code");
    find_code(db, &[1; 32])
        .expect("find code")
        .expect("issued")
        .grant_id
}

fn successor_of(db: &impl Db, hash: u8) -> Option<Successor> {
    match find_refresh_token(db, &[hash; 32])
        .expect("find refresh")
        .expect("stored")
        .state
    {
        TokenState::Live => None,
        TokenState::RotatedOut { successor, .. } => Some(successor),
    }
}

fn grant_verbs(db: &impl Db) {
    seed_user_and_client(db);
    let grant_id = issue_test_code(db);
    let code = find_code(db, &[1; 32]).expect("find").expect("found");
    assert!(!code.used && !code.grant_dead);
    assert_eq!(code.scope.as_ref().map(|s| s.as_str()), Some("openid"));
    let grant = GrantRef {
        grant_id,
        user_email: GRANT_EMAIL,
        client_id: "c",
    };
    use_code(db, &[1; 32], grant, None, &tokens(3, 4), true, ORIGIN).expect("use code");
    let code = find_code(db, &[1; 32]).expect("find").expect("found");
    assert!(code.used);
    assert_eq!(code.bound_secret_hash, None);

    let (info, facts) = find_access(db, &[3; 32]).expect("access").expect("found");
    assert_eq!(
        (info.user_id.as_str(), info.email.as_str()),
        ("u", GRANT_EMAIL)
    );
    assert!(!facts.grant_revoked && !facts.rotated_out && !facts.user_disabled);
    let (_, facts) = find_token(db, TokenKind::Refresh, &[4; 32])
        .expect("refresh")
        .expect("found");
    assert_eq!(facts.expires_at, None);
    assert_eq!(successor_of(db, 4), None, "live");

    rotate(db, &[4; 32], grant, &tokens(5, 6), None, ORIGIN).expect("rotate");
    assert_eq!(successor_of(db, 4), Some(Successor::Unused([6; 32])));
    rotate_again(db, &[4; 32], &[6; 32], grant, &tokens(7, 8), None, ORIGIN).expect("rotate again");
    assert_eq!(successor_of(db, 4), Some(Successor::Unused([8; 32])));
    assert_eq!(successor_of(db, 6), Some(Successor::UsedOrGone));
    keep(db, grant, &tokens(9, 10), Some("openid"), ORIGIN).expect("keep");
    let (_, rotated) = find_token(db, TokenKind::Refresh, &[6; 32])
        .expect("refresh")
        .expect("kept");
    assert!(rotated.rotated_out);

    let subject = id_token_facts(db, grant_id, Some(&[1; 32]))
        .expect("id_token facts")
        .expect("grant");
    assert_eq!(subject.nonce.as_deref(), Some("n"));
    assert_eq!(subject.auth_time, Some(5));
    let (access, refresh) = token_facts_counts(db).expect("counts");
    assert_eq!(access.iter().map(|(_, n)| n).sum::<i64>(), 4);
    assert_eq!(refresh.iter().map(|(_, n)| n).sum::<i64>(), 3);

    assert!(matches!(
        find_revocation(db, &[4; 32]).expect("revocation"),
        RevocationFacts::Refresh { grant_id: g, .. } if g == grant_id
    ));
    assert!(matches!(
        find_revocation(db, &[3; 32]).expect("revocation"),
        RevocationFacts::Access { .. }
    ));
    assert!(matches!(
        find_revocation(db, &[0xee; 32]).expect("revocation"),
        RevocationFacts::Unknown
    ));

    revoke_after_attack(db, grant, ORIGIN, "code_replay", "grant revoked").expect("revoke");
    assert!(find_access(db, &[3; 32]).expect("access").is_none());
    assert!(
        find_code(db, &[1; 32])
            .expect("find")
            .expect("kept")
            .grant_dead
    );

    let direct = DirectGrant {
        user_id: "u",
        user_email: GRANT_EMAIL,
        client_id: "c",
        scope: None,
        with_refresh: false,
        grant_type: "device_code",
        auth_time: None,
    };
    let second = issue_direct(db, &direct, &tokens(11, 12), ORIGIN).expect("direct");
    assert_ne!(second, grant_id);
    assert!(find_token(db, TokenKind::Refresh, &[12; 32])
        .expect("refresh")
        .is_none());
    assert_eq!(revoke_where_client(db, "other").expect("by client"), 0);
    assert_eq!(revoke_where_user(db, "u").expect("by user"), 1);
    assert_eq!(revoke_all(db).expect("all"), 0, "none left live");
}
on_both_backends!(grant_verbs);
