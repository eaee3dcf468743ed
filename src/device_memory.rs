//! What the device grant keeps in memory rather than in the database: when each device
//! code was last polled (and its interval after `slow_down`s), and how many wrong user
//! codes each client address entered lately. Keeping the polls here is what lets a
//! device waiting for its user cost no write; losing them on restart only forgets one
//! `slow_down`. Both maps are bounded.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::oauth::{USER_CODE_FAILURES_PER_WINDOW, USER_CODE_WINDOW_SECS};
use crate::secret::SecretHash;
use crate::throttle::normalize_ip;

/// Device codes remembered at most (~80 bytes each): far above the devices that wait at
/// once; past it, expired entries go first, then arbitrary ones (which only forgets a
/// `slow_down`).
pub const POLL_CAPACITY: usize = 65_536;
/// Client addresses whose wrong user codes are counted at most.
const ADDRESS_CAPACITY: usize = 16_384;

/// The in-memory state of the device grant.
pub struct DeviceMemory {
    /// How long a device code lives: older polls need no memory.
    code_ttl: Duration,
    polls: Mutex<HashMap<SecretHash, Poll>>,
    failures: Mutex<HashMap<IpAddr, Failures>>,
}

#[derive(Clone, Copy)]
struct Poll {
    at: Instant,
    interval_secs: i64,
}

#[derive(Clone, Copy)]
struct Failures {
    window_start: Instant,
    count: u32,
}

impl DeviceMemory {
    pub fn new(code_ttl_secs: i64) -> DeviceMemory {
        DeviceMemory {
            code_ttl: Duration::from_secs(u64::try_from(code_ttl_secs).unwrap_or(0)),
            polls: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Milliseconds since the code's previous poll and the interval it was then told to
    /// keep, if remembered.
    pub fn last_poll(&self, code: &SecretHash) -> (Option<u64>, Option<i64>) {
        let Ok(polls) = self.polls.lock() else {
            return (None, None);
        };
        match polls.get(code) {
            Some(poll) => (
                Some(u64::try_from(poll.at.elapsed().as_millis()).unwrap_or(u64::MAX)),
                Some(poll.interval_secs),
            ),
            None => (None, None),
        }
    }

    /// Remembers a poll answered now, with the interval the device must keep from now on.
    pub fn record_poll(&self, code: SecretHash, interval_secs: i64) {
        let Ok(mut polls) = self.polls.lock() else {
            return;
        };
        if polls.len() >= POLL_CAPACITY && !polls.contains_key(&code) {
            let ttl = self.code_ttl;
            polls.retain(|_, poll| poll.at.elapsed() < ttl);
            if polls.len() >= POLL_CAPACITY {
                if let Some(any) = polls.keys().next().copied() {
                    polls.remove(&any);
                }
            }
        }
        polls.insert(
            code,
            Poll {
                at: Instant::now(),
                interval_secs,
            },
        );
    }

    /// Forgets a code that was redeemed, denied or expired.
    pub fn forget(&self, code: &SecretHash) {
        if let Ok(mut polls) = self.polls.lock() {
            polls.remove(code);
        }
    }

    /// Reserves one user-code try for `ip`, counted before the code is looked up, so a
    /// burst of parallel guesses cannot pass the limit before the first is counted;
    /// `Err(seconds to wait)` once the address used its tries in the window. A try whose
    /// code turns out right is given back with [`Self::user_code_found`].
    pub fn try_user_code(&self, ip: IpAddr) -> Result<(), u64> {
        let window = Duration::from_secs(USER_CODE_WINDOW_SECS);
        let Ok(mut failures) = self.failures.lock() else {
            return Ok(());
        };
        let ip = normalize_ip(ip);
        if failures.len() >= ADDRESS_CAPACITY && !failures.contains_key(&ip) {
            failures.retain(|_, f| f.window_start.elapsed() < window);
            if failures.len() >= ADDRESS_CAPACITY {
                return Ok(());
            }
        }
        let entry = failures.entry(ip).or_insert(Failures {
            window_start: Instant::now(),
            count: 0,
        });
        if entry.window_start.elapsed() >= window {
            *entry = Failures {
                window_start: Instant::now(),
                count: 0,
            };
        }
        if entry.count >= USER_CODE_FAILURES_PER_WINDOW {
            return Err(window
                .saturating_sub(entry.window_start.elapsed())
                .as_secs()
                .max(1));
        }
        entry.count += 1;
        Ok(())
    }

    /// Gives back the try reserved for a code that was right: only wrong codes count.
    pub fn user_code_found(&self, ip: IpAddr) {
        if let Ok(mut failures) = self.failures.lock() {
            if let Some(entry) = failures.get_mut(&normalize_ip(ip)) {
                entry.count = entry.count.saturating_sub(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_polls_and_forgets_redeemed_codes() {
        let memory = DeviceMemory::new(600);
        assert_eq!(memory.last_poll(&[1; 32]), (None, None));
        memory.record_poll([1; 32], 10);
        let (since, interval) = memory.last_poll(&[1; 32]);
        assert!(since.is_some_and(|ms| ms < 5_000));
        assert_eq!(interval, Some(10));
        memory.forget(&[1; 32]);
        assert_eq!(memory.last_poll(&[1; 32]), (None, None));
    }

    #[test]
    fn an_address_is_stopped_after_too_many_wrong_user_codes() {
        let memory = DeviceMemory::new(600);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        for _ in 0..USER_CODE_FAILURES_PER_WINDOW {
            assert_eq!(memory.try_user_code(ip), Ok(()));
        }
        let wait = memory.try_user_code(ip).unwrap_err();
        assert!((1..=USER_CODE_WINDOW_SECS).contains(&wait), "{wait}");
        assert_eq!(memory.try_user_code(other), Ok(()));
    }

    /// The "bounded map" of the README: however many devices poll, the memory holds at
    /// most `POLL_CAPACITY` codes and `ADDRESS_CAPACITY` addresses.
    #[test]
    fn polls_and_addresses_stay_within_their_capacity() {
        let memory = DeviceMemory::new(600);
        for n in 0..POLL_CAPACITY + 100 {
            let mut code = [0u8; 32];
            code[..8].copy_from_slice(&(n as u64).to_le_bytes());
            memory.record_poll(code, 5);
        }
        assert_eq!(memory.polls.lock().unwrap().len(), POLL_CAPACITY);
        for n in 0..ADDRESS_CAPACITY as u32 + 100 {
            let _ = memory.try_user_code(IpAddr::from(n.to_be_bytes()));
        }
        assert_eq!(memory.failures.lock().unwrap().len(), ADDRESS_CAPACITY);
    }

    /// Tries reserved by parallel requests count before any answer: of many racing
    /// guesses from one address, only the limit gets through. A right code is given back.
    #[test]
    fn racing_guesses_from_one_address_cannot_pass_the_limit() {
        let memory = std::sync::Arc::new(DeviceMemory::new(600));
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(40));
        let admitted: u32 = (0..40)
            .map(|_| {
                let (memory, barrier) = (memory.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    u32::from(memory.try_user_code(ip).is_ok())
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .sum();
        assert_eq!(admitted, USER_CODE_FAILURES_PER_WINDOW);
        memory.user_code_found(ip);
        assert_eq!(memory.try_user_code(ip), Ok(()));
        assert!(memory.try_user_code(ip).is_err());
    }
}
