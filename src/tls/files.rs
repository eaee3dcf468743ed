//! The certificate and key files of `--tls-cert` / `--tls-key`: PEM, the certificate file
//! holding the leaf first and then its chain, which is served whole. Loading checks that
//! the key belongs to the certificate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::sign::CertifiedKey;

use super::pem::{self, PemError};
use super::TlsError;

/// Where the certificate chain and its private key are read from.
#[derive(Debug, Clone)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl CertFiles {
    /// Reads both files and pairs them; blocking file I/O.
    pub fn load(&self) -> Result<Arc<CertifiedKey>, TlsError> {
        let chain = read(&self.cert)?;
        let key = read(&self.key)?;
        pem::pair(&chain, &key).map_err(|e| match e {
            PemError::NoCertificate => TlsError::NoCertificate(self.cert.clone()),
            PemError::BadCertificate(cause) => TlsError::Read {
                path: self.cert.clone(),
                cause,
            },
            PemError::NoKey(cause) => TlsError::NoKey {
                path: self.key.clone(),
                cause,
            },
            PemError::UnsupportedKey(cause) => TlsError::UnsupportedKey {
                path: self.key.clone(),
                cause,
            },
            PemError::Mismatch => TlsError::Mismatch {
                cert: self.cert.clone(),
                key: self.key.clone(),
            },
        })
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::Read {
        path: path.to_owned(),
        cause: e.to_string(),
    })
}
