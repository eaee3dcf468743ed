//! ACME test helpers: Debian's `pebble` (RFC 8555 test CA) with `pebble-challtestsrv` as
//! its DNS server answering 127.0.0.1 for every name, on free loopback ports with their
//! config in a temp dir, killed on drop; and a TLS client that reports the certificate
//! oauthd serves for a name (any issuer accepted: pebble's roots change per start).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use crate::support::{Oauthd, Server};
use crate::tls_support::TestCa;

/// The name every ACME test certifies (challtestsrv resolves it to 127.0.0.1).
pub const DOMAIN: &str = "auth.example.com";

pub const DEADLINE: Duration = Duration::from_secs(60);

/// A free loopback port (bound and released; the tests use it at once).
/// A port free now for a program the test starts later on it. Picked below the kernel's
/// ephemeral range (32768 and up by default), which `:0` binds and outgoing connections of
/// the other tests draw from: one of those took a port handed out from that range before
/// its server bound it ("Address already in use", once in CI).
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::{SystemTime, UNIX_EPOCH};
    // Successive calls of this process step through the range, so two ports handed out
    // before either is bound differ.
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
        ^ std::process::id();
    let _ = NEXT.compare_exchange(u32::MAX, seed % 12000, Ordering::SeqCst, Ordering::SeqCst);
    for _ in 0..12000 {
        let port = 20000 + (NEXT.fetch_add(1, Ordering::SeqCst) % 12000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 20000..32000");
}

fn require(binary: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join(binary).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{binary}` is not installed: the ACME tests need Debian's `pebble` package (apt-get install pebble)"
    );
}

/// A running pebble and its DNS server.
pub struct Pebble {
    children: Vec<Child>,
    /// The ACME directory URL.
    pub directory: String,
    /// The root of pebble's own HTTPS certificate (`--acme-ca-root`).
    pub ca_root: PathBuf,
    log: PathBuf,
}

impl Pebble {
    /// Starts pebble validating HTTP-01 on `http_port` and TLS-ALPN-01 on `tls_port`
    /// (of 127.0.0.1), issuing certificates valid `validity_secs` (its default: years).
    pub fn start(dir: &Path, http_port: u16, tls_port: u16, validity_secs: Option<u64>) -> Pebble {
        require("pebble");
        require("pebble-challtestsrv");
        let dir = dir.join(format!("pebble-{}", free_port()));
        std::fs::create_dir_all(&dir).expect("pebble dir");
        let ca = TestCa::new();
        let leaf = ca.leaf(&dir, "pebble-api");
        let ca_root = dir.join("pebble-api-root.pem");
        std::fs::write(&ca_root, &ca.root_pem).expect("root");
        let (api, management, dns, dns_management) =
            (free_port(), free_port(), free_port(), free_port());
        let mut config = serde_json::json!({ "pebble": {
            "listenAddress": format!("127.0.0.1:{api}"),
            "managementListenAddress": format!("127.0.0.1:{management}"),
            "certificate": leaf.cert,
            "privateKey": leaf.key,
            "httpPort": http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
        }});
        if let Some(secs) = validity_secs {
            config["pebble"]["certificateValidityPeriod"] = secs.into();
        }
        let config_path = dir.join("pebble-config.json");
        std::fs::write(&config_path, config.to_string()).expect("config");
        let log = dir.join("pebble.log");
        let out = |name: &str| std::fs::File::create(dir.join(name)).expect("log file");
        let dns_server = Command::new("pebble-challtestsrv")
            .args([
                "-dns01",
                &format!("127.0.0.1:{dns}"),
                "-management",
                &format!("127.0.0.1:{dns_management}"),
                "-http01",
                "",
                "-https01",
                "",
                "-tlsalpn01",
                "",
                "-defaultIPv4",
                "127.0.0.1",
                "-defaultIPv6",
                "",
            ])
            .stdin(Stdio::null())
            .stdout(out("challtestsrv.log"))
            .stderr(out("challtestsrv.err"))
            .spawn()
            .expect("spawn pebble-challtestsrv");
        let mut pebble = Pebble {
            children: vec![dns_server],
            directory: format!("https://127.0.0.1:{api}/dir"),
            ca_root,
            log: log.clone(),
        };
        wait_for_port(
            SocketAddr::from(([127, 0, 0, 1], dns_management)),
            "challtestsrv",
        );
        let ca_server = Command::new("pebble")
            .args(["-config", config_path.to_str().expect("utf-8")])
            .args(["-dnsserver", &format!("127.0.0.1:{dns}")])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).expect("log"))
            .stderr(out("pebble.err"))
            .spawn()
            .expect("spawn pebble");
        pebble.children.push(ca_server);
        wait_for_port(SocketAddr::from(([127, 0, 0, 1], api)), "pebble");
        pebble
    }

    /// Pebble's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many orders pebble received. (Not its validations: a renewal's order may be
    /// authorized by the still-valid authorization of the order before, without a new
    /// challenge, as pebble did once despite `PEBBLE_AUTHZREUSE=0`.)
    pub fn orders(&self) -> usize {
        self.log().matches("Added order \"").count()
    }

    /// The `serve` flags pointing oauthd at this pebble.
    pub fn flags(&self) -> Vec<String> {
        vec![
            "--acme-domain".into(),
            DOMAIN.into(),
            "--acme-email".into(),
            "admin@example.com".into(),
            "--acme-directory".into(),
            self.directory.clone(),
            "--acme-ca-root".into(),
            self.ca_root.to_str().expect("utf-8").into(),
        ]
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn wait_for_port(addr: SocketAddr, what: &str) {
    let start = Instant::now();
    while TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err() {
        assert!(
            start.elapsed() < DEADLINE,
            "{what} did not listen on {addr}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts `oauthd serve` on `port` with `flags`.
pub fn serve_on(o: &Oauthd, port: u16, flags: &[String]) -> Server {
    let mut command = o.command();
    command
        .arg("serve")
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(flags)
        .env("RUST_LOG", "info");
    Server::spawn(command)
}

/// Starts `oauthd serve` on `port` for [`DOMAIN`] with an ACME directory where nothing
/// listens: only the stored certificate can be served.
pub fn serve_with_the_ca_gone(o: &Oauthd, port: u16) -> Server {
    serve_on(o, port, &the_ca_gone_for(DOMAIN))
}

/// The `serve` flags of ACME for `domain` with an ACME directory where nothing listens.
pub fn the_ca_gone_for(domain: &str) -> Vec<String> {
    vec![
        "--acme-domain".into(),
        domain.into(),
        "--acme-directory".into(),
        "https://127.0.0.1:9/dir".into(),
    ]
}

/// Accepts any server certificate: the tests compare what is served instead. Handshake
/// signatures are checked unless `.1` is false (a TLS-ALPN-01 certificate's critical
/// acmeIdentifier extension makes webpki refuse to parse it, as a CA's validator skips).
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>, bool);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        if !self.1 {
            return Ok(HandshakeSignatureValid::assertion());
        }
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        if !self.1 {
            return Ok(HandshakeSignatureValid::assertion());
        }
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// What one HTTPS `GET /healthz` (HTTP/1.1) to oauthd saw.
pub struct Served {
    /// Leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    pub response: String,
}

impl Served {
    /// The leaf's issuer, not-after (Unix seconds) and DNS names.
    pub fn leaf(&self) -> (String, i64, Vec<String>) {
        let (_, cert) = x509_parser::parse_x509_certificate(&self.chain[0]).expect("leaf parses");
        let names = cert
            .subject_alternative_name()
            .ok()
            .flatten()
            .map(|san| {
                san.value
                    .general_names
                    .iter()
                    .filter_map(|n| match n {
                        x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_string()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        (
            cert.issuer().to_string(),
            cert.validity().not_after.timestamp(),
            names,
        )
    }
}

/// A TLS client connection naming [`DOMAIN`], offering `alpn`, accepting any certificate.
fn client(alpn: &[u8]) -> Result<rustls::ClientConnection, String> {
    let validation = alpn == b"acme-tls/1";
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider, !validation)))
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    config.resumption = rustls::client::Resumption::disabled();
    let name = ServerName::try_from(DOMAIN).expect("name");
    rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())
}

/// A TLS-ALPN-01 validation handshake naming [`DOMAIN`] (ALPN `acme-tls/1`, as the CA
/// makes it): the certificate served.
pub fn alpn_challenge_certificate(port: u16) -> Result<CertificateDer<'static>, String> {
    let mut conn = client(b"acme-tls/1")?;
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(20)))
        .map_err(|e| e.to_string())?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp)
            .map_err(|e| format!("handshake: {e}"))?;
    }
    conn.peer_certificates()
        .and_then(|chain| chain.first())
        .map(|leaf| leaf.clone().into_owned())
        .ok_or_else(|| "no certificate served".to_owned())
}

/// One TLS connection naming [`DOMAIN`], then `GET /healthz`.
pub fn https_healthz(port: u16) -> Result<Served, String> {
    let mut conn = client(b"http/1.1")?;
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(20)))
        .map_err(|e| e.to_string())?;
    let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
    tls.write_all(
        format!("GET /healthz HTTP/1.1\r\nHost: {DOMAIN}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .map_err(|e| format!("handshake or request: {e}"))?;
    let mut response = Vec::new();
    let _ = tls.read_to_end(&mut response);
    let chain = conn
        .peer_certificates()
        .unwrap_or_default()
        .iter()
        .map(|c| c.clone().into_owned())
        .collect::<Vec<_>>();
    if chain.is_empty() {
        return Err("no certificate served".into());
    }
    Ok(Served {
        chain,
        response: String::from_utf8_lossy(&response).into_owned(),
    })
}

/// Sends `request` (whole, `Connection: close`) over plain TCP to `port`: the answer.
pub fn plain_http(port: u16, request: &str) -> String {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp.write_all(request.as_bytes()).expect("write");
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).expect("read");
    answer
}

/// Polls until oauthd serves a certificate `accept` likes (pebble's, a renewed one).
pub fn wait_for_certificate(
    port: u16,
    server: &Server,
    pebble: &Pebble,
    accept: impl Fn(&Served) -> bool,
) -> Served {
    let start = Instant::now();
    loop {
        if let Ok(served) = https_healthz(port) {
            if accept(&served) {
                return served;
            }
        }
        assert!(
            start.elapsed() < DEADLINE,
            "no expected certificate within {DEADLINE:?}\noauthd: {}\npebble: {}",
            server.logs(),
            pebble.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Polls until the server's log contains `needle`.
pub fn wait_for_log(server: &Server, needle: &str) -> String {
    let start = Instant::now();
    loop {
        let logs = server.logs();
        if logs.contains(needle) {
            return logs;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "no {needle:?} in the log within {DEADLINE:?}:\n{logs}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
