//! Unit tests of login admission: budgets, lockouts, queueing, and the async wait.

use super::*;

const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
const OTHER_IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 7));
/// A pool of 64 jobs, as on two cores: an address may hold 32.
const POOL: usize = 64;

/// Admits an attempt at `now`, insisting it may go.
fn go(t: &Throttle, email: &str, ip: IpAddr, now: Instant) -> [Key; 2] {
    let keys = t.keys(email, ip);
    assert_eq!(t.step_at(keys, now, false), Step::Go, "{email}");
    keys
}

fn fail(t: &Throttle, email: &str, ip: IpAddr, now: Instant) -> Duration {
    let keys = go(t, email, ip, now);
    t.decide_at(keys, true, now)
}

fn is_locked(step: Step) -> bool {
    matches!(step, Step::Refuse(Refusal::Locked { .. }))
}

#[test]
fn delays_grow_then_account_locks() {
    let t = Throttle::new(POOL);
    let now = Instant::now();
    let delays: Vec<Duration> = (0..4).map(|_| fail(&t, "a@x.org", IP, now)).collect();
    assert!(delays.windows(2).all(|w| w[1] > w[0]), "{delays:?}");
    fail(&t, "A@X.org", IP, now);
    assert_eq!(
        t.step_at(t.keys("a@x.org", IP), now, false),
        Step::Refuse(Refusal::Locked {
            retry_after_secs: 60,
            first_refusal: true
        })
    );
    // Another account from another address is unaffected.
    go(&t, "b@x.org", OTHER_IP, now);
    // The lockout ends.
    go(&t, "a@x.org", IP, now + Duration::from_secs(61));
}

/// Issue 8 item 2: attempts in flight count against the failure budget, so a burst
/// cannot get more than the limit verified before the first failure is recorded.
#[test]
fn attempts_in_flight_count_against_the_failure_budget() {
    let t = Throttle::new(POOL);
    let now = Instant::now();
    fail(&t, "a@x.org", IP, now);
    fail(&t, "a@x.org", IP, now);
    let keys = t.keys("a@x.org", IP);
    // 2 failures + 3 in flight = the limit of 5: the next one waits, unhashed.
    let in_flight: Vec<[Key; 2]> = (0..3).map(|_| go(&t, "a@x.org", IP, now)).collect();
    assert_eq!(t.step_at(keys, now, false), Step::Wait);
    // A success gives its place back without erasing the failures.
    t.decide_at(in_flight[0], false, now);
    assert_eq!(t.step_at(keys, now, true), Step::Go);
    for keys in [in_flight[1], in_flight[2], keys] {
        t.decide_at(keys, true, now);
    }
    assert!(is_locked(t.step_at(keys, now, false)));
}

#[test]
fn a_waiting_attempt_is_refused_when_the_lock_falls() {
    let t = Throttle::new(POOL);
    let now = Instant::now();
    let in_flight: Vec<[Key; 2]> = (0..4).map(|_| go(&t, "a@x.org", IP, now)).collect();
    let keys = t.keys("a@x.org", IP);
    assert_eq!(t.step_at(keys, now, false), Step::Wait, "beyond the share");
    for keys in &in_flight {
        t.decide_at(*keys, true, now);
    }
    // 4 failures: the waiter goes, fails, and the account locks.
    assert_eq!(t.step_at(keys, now, true), Step::Go);
    assert_eq!(t.step_at(keys, now, false), Step::Wait);
    t.decide_at(keys, true, now);
    assert!(is_locked(t.step_at(keys, now, true)));
    let entries = t.entries.lock().expect("lock");
    assert!(entries.values().all(|e| e.waiting == 0 && e.in_flight == 0));
}

#[test]
fn one_account_gets_a_bounded_share_and_queue() {
    let t = Throttle::new(POOL);
    let now = Instant::now();
    for _ in 0..ACCOUNT_SHARE {
        go(&t, "a@x.org", IP, now);
    }
    let keys = t.keys("a@x.org", IP);
    for _ in 0..ACCOUNT_QUEUE {
        assert_eq!(t.step_at(keys, now, false), Step::Wait);
    }
    assert!(matches!(
        t.step_at(keys, now, false),
        Step::Refuse(Refusal::QueueFull { .. })
    ));
    // Other accounts from the same address are not held up.
    go(&t, "b@x.org", IP, now);
}

#[test]
fn one_address_gets_half_the_pool_and_a_long_queue() {
    let t = Throttle::new(8);
    let now = Instant::now();
    for n in 0..4 {
        go(&t, &format!("user{n}@x.org"), IP, now);
    }
    assert_eq!(t.step_at(t.keys("user4@x.org", IP), now, false), Step::Wait);
    go(&t, "user5@x.org", OTHER_IP, now);
}

#[test]
fn success_does_not_lift_a_lockout_early() {
    let t = Throttle::new(POOL);
    let now = Instant::now();
    for _ in 0..ACCOUNT_LIMIT {
        fail(&t, "a@x.org", IP, now);
    }
    let keys = t.keys("a@x.org", IP);
    assert!(is_locked(t.step_at(keys, now, false)));
    assert!(is_locked(t.step_at(
        keys,
        now + Duration::from_secs(30),
        false
    )));
}

#[test]
fn only_the_first_refusal_of_a_lockout_is_reported() {
    let t = Throttle::new(POOL);
    let now = Instant::now();
    for _ in 0..ACCOUNT_LIMIT {
        fail(&t, "a@x.org", IP, now);
    }
    let keys = t.keys("a@x.org", IP);
    let first = t.step_at(keys, now, false);
    let second = t.step_at(keys, now, false);
    assert!(
        matches!(
            first,
            Step::Refuse(Refusal::Locked {
                first_refusal: true,
                ..
            })
        ),
        "{first:?}"
    );
    assert!(
        matches!(
            second,
            Step::Refuse(Refusal::Locked {
                first_refusal: false,
                ..
            })
        ),
        "{second:?}"
    );
}

#[test]
fn ip_locks_after_many_accounts() {
    let t = Throttle::new(POOL);
    let now = Instant::now();
    for n in 0..IP_LIMIT {
        fail(&t, &format!("user{n}@x.org"), IP, now);
    }
    assert!(is_locked(t.step_at(t.keys("fresh@x.org", IP), now, false)));
}

#[test]
fn repeated_lockouts_double() {
    let t = Throttle::new(POOL);
    let mut now = Instant::now();
    for _ in 0..ACCOUNT_LIMIT {
        fail(&t, "a@x.org", IP, now);
    }
    now += Duration::from_secs(61);
    for _ in 0..ACCOUNT_LIMIT {
        fail(&t, "a@x.org", OTHER_IP, now);
    }
    assert_eq!(
        t.step_at(t.keys("a@x.org", OTHER_IP), now, false),
        Step::Refuse(Refusal::Locked {
            retry_after_secs: 120,
            first_refusal: true
        })
    );
}

#[test]
fn decided_attempts_leave_no_entry_behind() {
    let t = Throttle::new(POOL);
    let now = Instant::now();
    let keys = go(&t, "a@x.org", IP, now);
    t.decide_at(keys, false, now);
    assert!(t.entries.lock().expect("lock").is_empty());
}

#[test]
fn ipv6_is_grouped_by_64() {
    let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
    let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().expect("ip");
    assert_eq!(normalize_ip(a), normalize_ip(b));
}

/// The async path: a waiting attempt goes as soon as one in flight is decided, and a
/// dropped (cancelled) waiter gives its queue place back.
#[tokio::test]
async fn a_waiting_attempt_goes_when_a_share_frees_up() {
    let t = std::sync::Arc::new(Throttle::new(POOL));
    let mut held = Vec::new();
    for _ in 0..ACCOUNT_SHARE {
        held.push(t.admit("a@x.org", IP).await.expect("admitted"));
    }
    let waiter = {
        let t = std::sync::Arc::clone(&t);
        tokio::spawn(async move { t.admit("a@x.org", IP).await.map(|a| a.succeeded()) })
    };
    let keys = t.keys("a@x.org", IP);
    while t.entries.lock().expect("lock")[&keys[0]].waiting == 0 {
        tokio::task::yield_now().await;
    }
    held.pop().expect("one").succeeded();
    assert_eq!(waiter.await.expect("join"), Ok(()));
    // A waiter that is dropped leaves the queue.
    held.push(t.admit("a@x.org", IP).await.expect("admitted"));
    let cancelled = tokio::time::timeout(Duration::from_millis(50), t.admit("a@x.org", IP)).await;
    assert!(cancelled.is_err(), "the share is still full");
    assert_eq!(t.entries.lock().expect("lock")[&keys[0]].waiting, 0);
    // Attempts dropped undecided (their clients went away) count as failures.
    drop(held);
    let account = t.entries.lock().expect("lock")[&keys[0]];
    assert_eq!((account.failures, account.in_flight), (4, 0));
    // Ones the server abandons do not.
    t.admit("b@x.org", OTHER_IP)
        .await
        .expect("admitted")
        .abandoned();
    assert!(!t
        .entries
        .lock()
        .expect("lock")
        .contains_key(&t.keys("b@x.org", OTHER_IP)[0]));
}
