//! The per-address connection cap: how many connections one client address (IPv6: one
//! /64, as the login throttle groups them) may hold open at once. Without it one client
//! could hold every connection slot with idle sockets and make everyone else wait in the
//! kernel's accept queue (issue 8, item 11). The accept loop asks [`ConnectionLimits::admit`]
//! for each new connection and closes it at once when refused.
//!
//! Loopback peers are exempt under `--trust-forwarded-for`: they are the reverse proxy,
//! which carries every client's connections. This module only counts; it does no I/O.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::throttle::normalize_ip;

/// Open connections per client address.
pub struct ConnectionLimits {
    per_address: usize,
    exempt_loopback: bool,
    // A std Mutex: held for one map update, never across an await.
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One admitted connection; dropping it frees its place.
pub struct Slot {
    limits: Arc<ConnectionLimits>,
    /// `None` for an exempt peer, which is not counted.
    address: Option<IpAddr>,
}

impl ConnectionLimits {
    pub fn new(per_address: usize, exempt_loopback: bool) -> Arc<ConnectionLimits> {
        Arc::new(ConnectionLimits {
            per_address,
            exempt_loopback,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for a new connection from `peer`, or `None` when that address already holds
    /// its share.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Option<Slot> {
        if self.exempt_loopback && peer.to_canonical().is_loopback() {
            return Some(Slot {
                limits: Arc::clone(self),
                address: None,
            });
        }
        let address = normalize_ip(peer);
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(address).or_insert(0);
        if *count >= self.per_address {
            return None;
        }
        *count += 1;
        Some(Slot {
            limits: Arc::clone(self),
            address: Some(address),
        })
    }

    #[cfg(test)]
    fn open_from(&self, peer: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(&normalize_ip(peer)).copied().unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let Some(address) = self.address else {
            return;
        };
        let mut open = self.limits.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&address) {
            *count -= 1;
            if *count == 0 {
                // Addresses without connections take no memory.
                open.remove(&address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn an_address_gets_its_share_and_no_more() {
        let limits = ConnectionLimits::new(2, false);
        let a = limits.admit(ip("192.0.2.1")).expect("first");
        let _b = limits.admit(ip("192.0.2.1")).expect("second");
        assert!(limits.admit(ip("192.0.2.1")).is_none());
        assert!(
            limits.admit(ip("192.0.2.2")).is_some(),
            "others are not affected"
        );
        drop(a);
        assert!(
            limits.admit(ip("192.0.2.1")).is_some(),
            "a closed slot frees"
        );
    }

    #[test]
    fn counts_return_to_zero_and_leave_no_entry() {
        let limits = ConnectionLimits::new(3, false);
        let slots: Vec<Slot> = (0..3)
            .filter_map(|_| limits.admit(ip("192.0.2.9")))
            .collect();
        assert_eq!(limits.open_from(ip("192.0.2.9")), 3);
        drop(slots);
        assert_eq!(limits.open_from(ip("192.0.2.9")), 0);
        assert!(limits.open.lock().expect("lock").is_empty());
    }

    #[test]
    fn ipv6_shares_one_cap_per_64_and_mapped_ipv4_is_ipv4() {
        let limits = ConnectionLimits::new(1, false);
        let _a = limits.admit(ip("2001:db8:1:2::1")).expect("first");
        assert!(limits.admit(ip("2001:db8:1:2:ffff::9")).is_none());
        assert!(limits.admit(ip("2001:db8:1:3::1")).is_some());
        let _v4 = limits.admit(ip("192.0.2.1")).expect("v4");
        assert!(limits.admit(ip("::ffff:192.0.2.1")).is_none());
    }

    #[test]
    fn loopback_is_exempt_only_behind_a_trusted_proxy() {
        let trusted = ConnectionLimits::new(1, true);
        let slots: Vec<Slot> = ["127.0.0.1", "127.0.0.1", "::1", "::ffff:127.0.0.1"]
            .iter()
            .map(|p| trusted.admit(ip(p)).expect("exempt"))
            .collect();
        assert_eq!(slots.len(), 4);
        let _other = trusted.admit(ip("192.0.2.1")).expect("first");
        assert!(trusted.admit(ip("192.0.2.1")).is_none());
        let untrusted = ConnectionLimits::new(1, false);
        let _first = untrusted.admit(ip("127.0.0.1")).expect("first");
        assert!(untrusted.admit(ip("127.0.0.1")).is_none());
    }
}
