//! The certificate every handshake is answered with, swappable while serving: a reload
//! or a renewal replaces it for new connections and leaves open ones alone. With ACME,
//! until the first certificate is issued handshakes are refused.

use std::sync::{Arc, OnceLock, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Holds the current certificate chain and key.
pub struct Resolver {
    // A std lock: held only to clone or replace one Arc, never across an await.
    current: RwLock<Option<Served>>,
    /// Told each served certificate's not-after (the metrics' expiry gauge).
    expiry_watch: OnceLock<Box<dyn Fn(i64) + Send + Sync>>,
}

#[derive(Debug, Clone)]
struct Served {
    key: Arc<CertifiedKey>,
    not_after: Option<i64>,
}

impl Served {
    fn new(key: Arc<CertifiedKey>) -> Served {
        let not_after = key
            .end_entity_cert()
            .ok()
            .and_then(|der| super::pem::validity(der))
            .map(|v| v.not_after);
        Served { key, not_after }
    }
}

impl Resolver {
    pub fn new(first: Arc<CertifiedKey>) -> Resolver {
        Resolver {
            current: RwLock::new(Some(Served::new(first))),
            expiry_watch: OnceLock::new(),
        }
    }

    /// For ACME: serves `first` (the stored certificate, if any); none refuses handshakes.
    pub fn for_acme(first: Option<Arc<CertifiedKey>>) -> Resolver {
        Resolver {
            current: RwLock::new(first.map(Served::new)),
            expiry_watch: OnceLock::new(),
        }
    }

    /// Serves `next` from the next handshake on.
    pub fn replace(&self, next: Arc<CertifiedKey>) {
        let next = Served::new(next);
        let not_after = next.not_after;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(next);
        if let (Some(watch), Some(not_after)) = (self.expiry_watch.get(), not_after) {
            watch(not_after);
        }
    }

    /// Calls `watch` with the not-after of the served certificate now and after each
    /// replacement (the first call only; later ones are ignored).
    pub fn watch_expiry(&self, watch: impl Fn(i64) + Send + Sync + 'static) {
        if let Some(not_after) = self.not_after() {
            watch(not_after);
        }
        let _ = self.expiry_watch.set(Box::new(watch));
    }

    fn current(&self) -> Option<Served> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The not-after (Unix seconds) of the certificate served now.
    pub fn not_after(&self) -> Option<i64> {
        self.current().and_then(|s| s.not_after)
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current().map(|s| s.key)
    }
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("not_after", &self.not_after())
            .finish_non_exhaustive()
    }
}
