//! The certificate every handshake is answered with, swappable while serving: a reload
//! replaces it for new connections and leaves open ones alone.

use std::sync::{Arc, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Holds the current certificate chain and key.
#[derive(Debug)]
pub struct Resolver {
    // A std lock: held only to clone or replace one Arc, never across an await.
    current: RwLock<Arc<CertifiedKey>>,
}

impl Resolver {
    pub fn new(first: Arc<CertifiedKey>) -> Resolver {
        Resolver {
            current: RwLock::new(first),
        }
    }

    /// Serves `next` from the next handshake on.
    pub fn replace(&self, next: Arc<CertifiedKey>) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = next;
    }

    fn current(&self) -> Arc<CertifiedKey> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()))
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}
