//! Built-in HTTPS: the rustls server settings (ring, TLS 1.2 and 1.3 only, ALPN h2 and
//! http/1.1), the certificate files and their reloading, certificates by ACME kept in the
//! database, and the handshake the accept loop runs on each connection before HTTP. No
//! OpenSSL anywhere.

pub mod acme;
mod challenges;
mod files;
pub mod http_challenge;
pub mod pem;
mod reload;
pub mod renewal;
mod resolver;

use std::sync::Arc;
use std::time::Duration;

use hyper::header::{HeaderValue, STRICT_TRANSPORT_SECURITY};
use hyper::Response;
use rustls::ServerConfig;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::{LazyConfigAcceptor, TlsAcceptor};

pub use challenges::Challenges;
pub use files::CertFiles;
pub use reload::reload_on_sighup;
pub use resolver::Resolver;

/// Why HTTPS could not start (or a reload was refused).
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {cause}")]
    Read {
        path: std::path::PathBuf,
        cause: String,
    },
    #[error("{0}: no PEM certificate in the file")]
    NoCertificate(std::path::PathBuf),
    #[error("{path}: no usable PEM private key in the file ({cause})")]
    NoKey {
        path: std::path::PathBuf,
        cause: String,
    },
    #[error("{path}: unsupported private key: {cause}")]
    UnsupportedKey {
        path: std::path::PathBuf,
        cause: String,
    },
    #[error("the private key {key} does not belong to the certificate {cert}")]
    Mismatch {
        cert: std::path::PathBuf,
        key: std::path::PathBuf,
    },
    #[error("cannot set up TLS: {0}")]
    Setup(String),
}

/// A slow or silent client gets this long to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Two years: browsers then refuse plain HTTP for this host (no `includeSubDomains`, the
/// parent domain may serve other things).
const HSTS: &str = "max-age=63072000";

/// HTTPS as the accept loop uses it: the acceptor and the resolver holding the current
/// certificate, which a reload replaces without touching open connections.
#[derive(Clone)]
pub struct Tls {
    pub acceptor: TlsAcceptor,
    pub resolver: Arc<Resolver>,
    /// ACME challenge answers (`None` with certificate files).
    pub challenges: Option<Arc<Challenges>>,
}

impl Tls {
    /// Loads and checks the certificate and key files: any problem is an error here, at
    /// start, not at the first handshake.
    pub fn from_files(files: &CertFiles) -> Result<Tls, TlsError> {
        let resolver = Arc::new(Resolver::new(files.load()?));
        let config = server_config(Arc::clone(&resolver) as _, HTTP_ALPN)?;
        Ok(Tls {
            acceptor: TlsAcceptor::from(config),
            resolver,
            challenges: None,
        })
    }

    /// HTTPS with certificates by ACME: serves `stored` (if any) meanwhile, and answers
    /// TLS-ALPN-01 validation handshakes from `challenges`.
    pub fn for_acme(
        stored: Option<Arc<rustls::sign::CertifiedKey>>,
        challenges: Arc<Challenges>,
    ) -> Result<Tls, TlsError> {
        let resolver = Arc::new(Resolver::for_acme(stored));
        let config = server_config(Arc::clone(&resolver) as _, HTTP_ALPN)?;
        Ok(Tls {
            acceptor: TlsAcceptor::from(config),
            resolver,
            challenges: Some(challenges),
        })
    }

    /// The TLS handshake of one accepted connection, bounded in time. A client speaking
    /// plain HTTP fails here at once (its request is not a TLS record). A TLS-ALPN-01
    /// validation connection ends after its handshake: it carries no HTTP.
    pub async fn handshake(&self, stream: TcpStream) -> std::io::Result<TlsStream<TcpStream>> {
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.accept(stream)).await {
            Ok(result) => result,
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "TLS handshake timed out",
            )),
        }
    }

    /// With ACME the client's hello is read first: a validation handshake (ALPN
    /// `acme-tls/1`) is answered with the challenge certificate for its name, which may
    /// have to be read from the database (another instance offered it).
    async fn accept(&self, stream: TcpStream) -> std::io::Result<TlsStream<TcpStream>> {
        let Some(challenges) = &self.challenges else {
            return self.acceptor.accept(stream).await;
        };
        let start = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream).await?;
        let (validating, name) = {
            let hello = start.client_hello();
            let validating = hello
                .alpn()
                .is_some_and(|mut offered| offered.any(|p| p == challenges::ACME_TLS_ALPN));
            (validating, hello.server_name().map(str::to_owned))
        };
        if !validating {
            return start.into_stream(Arc::clone(self.acceptor.config())).await;
        }
        let answer = match name {
            Some(name) => challenges.alpn_answer(&name).await,
            None => None,
        };
        let certified = answer.ok_or_else(|| {
            std::io::Error::other("TLS-ALPN-01 handshake for a name with no challenge offered")
        })?;
        let config = server_config(
            Arc::new(Resolver::new(certified)),
            &[challenges::ACME_TLS_ALPN],
        )
        .map_err(std::io::Error::other)?;
        start.into_stream(config).await?;
        Err(std::io::Error::other(
            "ACME TLS-ALPN-01 validation handshake done",
        ))
    }
}

/// The ALPN protocols of HTTPS: HTTP/2 preferred over HTTP/1.1.
const HTTP_ALPN: &[&[u8]] = &[b"h2", b"http/1.1"];

/// TLS 1.2 and 1.3 only, ring's cipher suites, the `alpn` protocols.
fn server_config(
    resolver: Arc<dyn rustls::server::ResolvesServerCert>,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Setup(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// Marks a response served over HTTPS with `Strict-Transport-Security`.
pub fn add_hsts<B>(response: &mut Response<B>) {
    response
        .headers_mut()
        .insert(STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS));
}
