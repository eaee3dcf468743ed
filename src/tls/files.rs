//! The certificate and key files of `--tls-cert` / `--tls-key`: PEM, the certificate file
//! holding the leaf first and then its chain, which is served whole. Loading checks that
//! the key belongs to the certificate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

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
        let chain = read_chain(&self.cert)?;
        let key = read_key(&self.key)?;
        let signing_key = rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| {
            TlsError::UnsupportedKey {
                path: self.key.clone(),
                cause: e.to_string(),
            }
        })?;
        let certified = CertifiedKey::new(chain, signing_key);
        match certified.keys_match() {
            Ok(()) => Ok(Arc::new(certified)),
            Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
                // The key type cannot report its public half: nothing to compare.
                Ok(Arc::new(certified))
            }
            Err(_) => Err(TlsError::Mismatch {
                cert: self.cert.clone(),
                key: self.key.clone(),
            }),
        }
    }
}

fn read_failure(path: &Path, cause: impl std::fmt::Display) -> TlsError {
    TlsError::Read {
        path: path.to_owned(),
        cause: cause.to_string(),
    }
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = std::fs::read(path).map_err(|e| read_failure(path, e))?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| read_failure(path, e))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(path.to_owned()));
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = std::fs::read(path).map_err(|e| read_failure(path, e))?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsError::NoKey {
        path: path.to_owned(),
        cause: e.to_string(),
    })
}
