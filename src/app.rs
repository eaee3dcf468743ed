//! The shared state every request handler receives. It sits below the handlers and the
//! server, so handlers never import the accept loop that calls them.

use std::sync::Arc;

use crate::config::ServeConfig;
use crate::csrf::Csrf;
use crate::device_memory::DeviceMemory;
use crate::metrics::Metrics;
use crate::oidc_keys::SigningKeys;
use crate::password::HashPool;
use crate::rotation_clock::RotationClock;
use crate::store::Store;
use crate::throttle::shared::SharedFailures;
use crate::throttle::Throttle;

/// Shared state of the running server.
pub struct App {
    pub store: Store,
    pub config: ServeConfig,
    pub hasher: HashPool,
    pub throttle: Throttle,
    /// Monotonic times of this process's refresh rotations, for the grace window.
    pub rotations: Arc<RotationClock>,
    pub csrf: Csrf,
    /// Device grant: last polls and wrong user codes, kept in memory (no write per poll).
    pub devices: DeviceMemory,
    /// The Prometheus metrics (recorded always, served on `--metrics-listen`).
    pub metrics: Metrics,
    /// id_token signing keys, parsed once.
    pub signing_keys: SigningKeys,
    /// Login failure and wrong user-code counters shared with the other instances of a
    /// PostgreSQL database; `None` on SQLite, where `throttle` and `devices` alone count
    /// (no write per guess).
    pub shared_failures: Option<Arc<SharedFailures>>,
}
