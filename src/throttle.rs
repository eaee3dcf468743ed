//! Login throttling per account and per client IP (SPEC §5): each failure in a window
//! adds a growing delay, and past a threshold the key is locked out (429 + Retry-After)
//! for a period that doubles with each lockout. A correct password during a lockout is
//! refused like any other attempt, so a lockout cannot be raced.
//!
//! State is in memory, deliberately: persisting every failed attempt would cost an fsync
//! per guess (an attacker could turn guessing into disk load), and a restart needs access
//! to the host, which an online guesser does not have. The map is bounded.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures older than this are forgotten.
const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Failures per account before a lockout.
const ACCOUNT_LIMIT: u32 = 5;
/// Failures per client IP before a lockout (higher: several users may share a NAT).
const IP_LIMIT: u32 = 20;
const FIRST_LOCKOUT: Duration = Duration::from_secs(60);
const MAX_LOCKOUT: Duration = Duration::from_secs(15 * 60);
/// The delay after the n-th failure is BASE_DELAY·2^(n-1), capped.
const BASE_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(2);
/// Entries kept at most; beyond it, stale entries are swept and then the oldest dropped.
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Account(u64),
    Ip(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    lockouts: u32,
    last_failure: Instant,
    locked_until: Option<Instant>,
    /// Whether a refusal during the current lockout was already reported, so the audit
    /// trail gets one line per lockout instead of one write per hammered request.
    lockout_reported: bool,
}

/// Login throttle state, shared by the sign-in page and `/api/oauth_login`.
pub struct Throttle {
    entries: Mutex<HashMap<Key, Entry>>,
    hasher_seed: std::collections::hash_map::RandomState,
}

/// The verdict before an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Open,
    Locked {
        retry_after_secs: u64,
        /// The first refusal of this lockout (worth an audit entry).
        first_refusal: bool,
    },
}

impl Default for Throttle {
    fn default() -> Self {
        Self::new()
    }
}

impl Throttle {
    pub fn new() -> Throttle {
        Throttle {
            entries: Mutex::new(HashMap::new()),
            hasher_seed: Default::default(),
        }
    }

    fn keys(&self, email: &str, ip: IpAddr) -> [Key; 2] {
        use std::hash::BuildHasher;
        // Accounts are keyed by a keyed hash of the lower-cased email, so the map holds
        // no addresses and an attacker cannot pick colliding keys.
        let account = self.hasher_seed.hash_one(email.to_lowercase());
        [Key::Account(account), Key::Ip(normalize_ip(ip))]
    }

    /// Whether an attempt for `email` from `ip` may proceed now.
    pub fn check(&self, email: &str, ip: IpAddr) -> Gate {
        self.check_at(email, ip, Instant::now())
    }

    fn check_at(&self, email: &str, ip: IpAddr, now: Instant) -> Gate {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let mut retry_after: Option<Duration> = None;
        let mut first_refusal = false;
        for key in self.keys(email, ip) {
            let Some(entry) = entries.get_mut(&key) else {
                continue;
            };
            let Some(until) = entry.locked_until.filter(|until| *until > now) else {
                continue;
            };
            retry_after = retry_after.max(Some(until - now));
            first_refusal |= !entry.lockout_reported;
            entry.lockout_reported = true;
        }
        match retry_after {
            Some(wait) => Gate::Locked {
                retry_after_secs: (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1),
                first_refusal,
            },
            None => Gate::Open,
        }
    }

    /// Records a failed attempt; returns how long to wait before answering.
    pub fn record_failure(&self, email: &str, ip: IpAddr) -> Duration {
        self.record_failure_at(email, ip, Instant::now())
    }

    fn record_failure_at(&self, email: &str, ip: IpAddr, now: Instant) -> Duration {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            sweep(&mut entries, now);
        }
        let mut delay = Duration::ZERO;
        for (key, limit) in self
            .keys(email, ip)
            .into_iter()
            .zip([ACCOUNT_LIMIT, IP_LIMIT])
        {
            let entry = entries.entry(key).or_insert(Entry {
                failures: 0,
                lockouts: 0,
                last_failure: now,
                locked_until: None,
                lockout_reported: false,
            });
            if now.duration_since(entry.last_failure) > WINDOW {
                entry.failures = 0;
            }
            entry.failures += 1;
            entry.last_failure = now;
            if entry.failures >= limit {
                let lockout = FIRST_LOCKOUT
                    .saturating_mul(1 << entry.lockouts.min(8))
                    .min(MAX_LOCKOUT);
                entry.locked_until = Some(now + lockout);
                entry.lockout_reported = false;
                entry.lockouts += 1;
                entry.failures = 0;
            }
            let exponent = entry.failures.saturating_sub(1).min(10);
            delay = delay.max(BASE_DELAY.saturating_mul(1 << exponent).min(MAX_DELAY));
        }
        delay
    }

    /// A successful login clears the account's failures (not the IP's: one good password
    /// must not launder many guesses at other accounts).
    pub fn record_success(&self, email: &str, ip: IpAddr) {
        let [account, _] = self.keys(email, ip);
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.remove(&account);
    }
}

/// IPv6 clients are throttled per /64, since one host usually owns a whole /64.
pub fn normalize_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

fn sweep(entries: &mut HashMap<Key, Entry>, now: Instant) {
    entries.retain(|_, e| {
        now.duration_since(e.last_failure) <= WINDOW || e.locked_until.is_some_and(|u| u > now)
    });
    if entries.len() >= MAX_ENTRIES {
        // Under a flood of distinct keys, forget the oldest half rather than grow.
        let mut ages: Vec<Instant> = entries.values().map(|e| e.last_failure).collect();
        ages.sort();
        let cutoff = ages[ages.len() / 2];
        entries.retain(|_, e| e.last_failure > cutoff);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

    #[test]
    fn delays_grow_then_account_locks() {
        let t = Throttle::new();
        let now = Instant::now();
        let delays: Vec<Duration> = (0..4)
            .map(|_| t.record_failure_at("a@x.org", IP, now))
            .collect();
        assert!(delays.windows(2).all(|w| w[1] > w[0]), "{delays:?}");
        assert_eq!(t.check_at("a@x.org", IP, now), Gate::Open);
        t.record_failure_at("A@X.org", IP, now);
        assert!(matches!(
            t.check_at("a@x.org", IP, now),
            Gate::Locked {
                retry_after_secs: 60,
                first_refusal: true
            }
        ));
        // Another account from another address is unaffected.
        let other: IpAddr = "198.51.100.7".parse().expect("ip");
        assert_eq!(t.check_at("b@x.org", other, now), Gate::Open);
        // The lockout ends.
        assert_eq!(
            t.check_at("a@x.org", IP, now + Duration::from_secs(61)),
            Gate::Open
        );
    }

    #[test]
    fn success_does_not_lift_a_lockout_early() {
        let t = Throttle::new();
        let now = Instant::now();
        for _ in 0..ACCOUNT_LIMIT {
            t.record_failure_at("a@x.org", IP, now);
        }
        assert!(matches!(
            t.check_at("a@x.org", IP, now),
            Gate::Locked { .. }
        ));
        // Callers check before verifying, so a correct password never reaches
        // record_success while locked; the lock holds regardless.
        assert!(matches!(
            t.check_at("a@x.org", IP, now + Duration::from_secs(30)),
            Gate::Locked { .. }
        ));
    }

    #[test]
    fn only_the_first_refusal_of_a_lockout_is_reported() {
        let t = Throttle::new();
        let now = Instant::now();
        for _ in 0..ACCOUNT_LIMIT {
            t.record_failure_at("a@x.org", IP, now);
        }
        let first = t.check_at("a@x.org", IP, now);
        let second = t.check_at("a@x.org", IP, now);
        assert!(
            matches!(
                first,
                Gate::Locked {
                    first_refusal: true,
                    ..
                }
            ),
            "{first:?}"
        );
        assert!(
            matches!(
                second,
                Gate::Locked {
                    first_refusal: false,
                    ..
                }
            ),
            "{second:?}"
        );
    }

    #[test]
    fn ip_locks_after_many_accounts() {
        let t = Throttle::new();
        let now = Instant::now();
        for n in 0..IP_LIMIT {
            t.record_failure_at(&format!("user{n}@x.org"), IP, now);
        }
        assert!(matches!(
            t.check_at("fresh@x.org", IP, now),
            Gate::Locked { .. }
        ));
    }

    #[test]
    fn repeated_lockouts_double() {
        let t = Throttle::new();
        let mut now = Instant::now();
        for _ in 0..ACCOUNT_LIMIT {
            t.record_failure_at("a@x.org", IP, now);
        }
        now += Duration::from_secs(61);
        let other: IpAddr = "198.51.100.8".parse().expect("ip");
        for _ in 0..ACCOUNT_LIMIT {
            t.record_failure_at("a@x.org", other, now);
        }
        assert!(matches!(
            t.check_at("a@x.org", other, now),
            Gate::Locked {
                retry_after_secs: 120,
                first_refusal: true
            }
        ));
    }

    #[test]
    fn ipv6_is_grouped_by_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().expect("ip");
        assert_eq!(normalize_ip(a), normalize_ip(b));
    }
}
