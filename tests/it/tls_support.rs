//! HTTPS test helpers: a test CA (root, intermediate, leaf) made with rcgen, and a real
//! TLS client (tokio-rustls with the test root as its only trust anchor) speaking HTTP/2
//! or HTTP/1.1 through hyper.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};

/// A root and an intermediate CA; leaves are signed by the intermediate, so a client
/// trusting only the root succeeds only when the server sends the whole chain.
pub struct TestCa {
    pub root_der: CertificateDer<'static>,
    pub root_pem: String,
    intermediate: CertifiedIssuer<'static, KeyPair>,
}

/// A leaf certificate as written to disk.
pub struct Leaf {
    pub der: CertificateDer<'static>,
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params
}

impl TestCa {
    pub fn new() -> TestCa {
        let root = CertifiedIssuer::self_signed(
            ca_params("oauthd test root"),
            KeyPair::generate().expect("key"),
        )
        .expect("root");
        let intermediate = CertifiedIssuer::signed_by(
            ca_params("oauthd test intermediate"),
            KeyPair::generate().expect("key"),
            &root,
        )
        .expect("intermediate");
        TestCa {
            root_der: root.der().clone(),
            root_pem: root.pem(),
            intermediate,
        }
    }

    /// Writes `DIR/NAME.crt` (leaf + intermediate) and `DIR/NAME.key` for localhost and
    /// 127.0.0.1.
    pub fn leaf(&self, dir: &Path, name: &str) -> Leaf {
        let key = KeyPair::generate().expect("key");
        let params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("params");
        let cert = params.signed_by(&key, &self.intermediate).expect("leaf");
        let cert_path = dir.join(format!("{name}.crt"));
        let key_path = dir.join(format!("{name}.key"));
        std::fs::write(&cert_path, cert.pem() + &self.intermediate.pem()).expect("write cert");
        std::fs::write(&key_path, key.serialize_pem()).expect("write key");
        Leaf {
            der: cert.der().clone(),
            cert: cert_path,
            key: key_path,
        }
    }

    /// A client trusting only the root, offering `alpn` and the given TLS versions.
    pub fn client(
        &self,
        alpn: &[&[u8]],
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> tokio_rustls::TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.root_der.clone()).expect("root");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        // Every connection a full handshake: a resumed session would report the
        // certificate of the session it resumes, not the one served now.
        config.resumption = rustls::client::Resumption::disabled();
        tokio_rustls::TlsConnector::from(Arc::new(config))
    }
}

/// What one HTTPS GET saw, at the TLS and the HTTP level.
pub struct HttpsReply {
    pub alpn: Option<Vec<u8>>,
    pub tls_version: Option<rustls::ProtocolVersion>,
    pub chain: Vec<CertificateDer<'static>>,
    pub version: hyper::Version,
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: String,
}

const DEADLINE: Duration = Duration::from_secs(30);

/// One GET of `path` over a new TLS connection, by HTTP/2 when the server chose `h2` and
/// HTTP/1.1 otherwise.
pub async fn https_get(
    connector: &tokio_rustls::TlsConnector,
    addr: SocketAddr,
    path: &str,
) -> Result<HttpsReply, String> {
    tokio::time::timeout(DEADLINE, get(connector, addr, path))
        .await
        .map_err(|_| "timed out".to_owned())?
}

async fn get(
    connector: &tokio_rustls::TlsConnector,
    addr: SocketAddr,
    path: &str,
) -> Result<HttpsReply, String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let name = ServerName::try_from("localhost").expect("name");
    let tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let (_, session) = tls.get_ref();
    let alpn = session.alpn_protocol().map(<[u8]>::to_vec);
    let tls_version = session.protocol_version();
    let chain = session
        .peer_certificates()
        .unwrap_or_default()
        .iter()
        .map(|c| c.clone().into_owned())
        .collect();
    let request = hyper::Request::get(format!("https://localhost:{}{path}", addr.port()))
        .header(hyper::header::HOST, format!("localhost:{}", addr.port()))
        .body(Empty::<Bytes>::new())
        .expect("request");
    let response = if alpn.as_deref() == Some(b"h2") {
        let mut request = request;
        request.headers_mut().remove(hyper::header::HOST);
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        sender.send_request(request).await
    } else {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        let (mut parts, body) = request.into_parts();
        parts.uri = path.parse().expect("path");
        sender
            .send_request(hyper::Request::from_parts(parts, body))
            .await
    }
    .map_err(|e| e.to_string())?;
    let version = response.version();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok(HttpsReply {
        alpn,
        tls_version,
        chain,
        version,
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// A current-thread runtime for a test's async client calls.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}
