//! TLS for the benchmark: a self-signed certificate for the server under test
//! (`selfsigned`), and the client side of every connection the generator opens when it is
//! given `--tls-ca FILE` (tokio-rustls on ring, that certificate as the only root, ALPN
//! `http/1.1`). Connections stay keep-alive, so a handshake is paid once per connection,
//! not per request. Without `--tls-ca` everything is plain TCP, as before.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream as StdTcpStream};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use serde_json::Value;

use crate::report::{self, Row};
use crate::{Args, Res};

/// The client settings, set once by `init` when `--tls-ca` is given.
static CLIENT: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();

/// Reads `--tls-ca` (a PEM certificate) if given: every later connection speaks TLS.
pub fn init(args: &Args) -> Res<()> {
    let Some(ca) = args.opt("tls-ca") else {
        return Ok(());
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).map_err(|e| format!("--tls-ca {ca}: {e}"))? {
        let cert = cert.map_err(|e| format!("--tls-ca {ca}: {e}"))?;
        roots.add(cert).map_err(|e| format!("--tls-ca {ca}: {e}"))?;
    }
    if roots.is_empty() {
        return Err(format!("--tls-ca {ca}: no certificate"));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // The generator speaks HTTP/1.1 only; the server also offers h2 by ALPN.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let _ = CLIENT.set(Arc::new(config));
    Ok(())
}

/// Whether connections speak TLS (`--tls-ca` was given).
pub fn enabled() -> bool {
    CLIENT.get().is_some()
}

/// `selfsigned --cert FILE --key FILE`: a self-signed certificate (ECDSA P-256) for
/// 127.0.0.1 and localhost, valid for two days, and its private key, both PEM.
pub fn selfsigned(args: &Args) -> Res<()> {
    let names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
    let made = rcgen::generate_simple_self_signed(names).map_err(|e| e.to_string())?;
    for (key, pem) in [
        ("cert", made.cert.pem()),
        ("key", made.signing_key.serialize_pem()),
    ] {
        let path = args.get(key)?;
        std::fs::write(path, pem).map_err(|e| format!("{path}: {e}"))?;
    }
    Ok(())
}

/// A connection to the server: plain TCP, or TLS over it.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// Connects (TCP_NODELAY) and, with TLS on, completes the handshake.
pub async fn connect(addr: SocketAddr) -> io::Result<Stream> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let Some(config) = CLIENT.get() else {
        return Ok(Stream::Plain(tcp));
    };
    let name = ServerName::IpAddress(addr.ip().into());
    let tls = TlsConnector::from(Arc::clone(config))
        .connect(name, tcp)
        .await?;
    Ok(Stream::Tls(Box::new(tls)))
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// One blocking request on a fresh connection (TLS when on), for W4's start-up probe:
/// the first bytes of the answer (at least the status line), or None on any failure.
pub fn blocking_exchange(addr: SocketAddr, request: &[u8]) -> Option<Vec<u8>> {
    let mut tcp = StdTcpStream::connect(addr).ok()?;
    let _ = tcp.set_nodelay(true);
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 64];
    let mut got = 0;
    let mut read_head = |s: &mut dyn ReadWrite| -> Option<Vec<u8>> {
        s.write_all(request).ok()?;
        s.flush().ok()?;
        while got < 12 {
            match s.read(&mut buf[got..]) {
                Ok(0) | Err(_) => return None,
                Ok(n) => got += n,
            }
        }
        Some(buf[..got].to_vec())
    };
    match CLIENT.get() {
        None => read_head(&mut tcp),
        Some(config) => {
            let name = ServerName::IpAddress(addr.ip().into());
            let conn = rustls::ClientConnection::new(Arc::clone(config), name).ok()?;
            read_head(&mut rustls::StreamOwned::new(conn, tcp))
        }
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// The notes of a TLS row: `extra`, and the rate as a % of the plain run's, if there was one.
pub fn vs_plain(r: &Value, plain: Option<&Value>, extra: &str) -> String {
    let rate = |r: &Value| report::f(&r["result"], "req_per_s");
    match plain {
        Some(p) if !std::ptr::eq(p, r) && rate(p) > 0.0 => {
            let pct = format!(
                "{:.0}% of plain {:.0} req/s",
                100.0 * rate(r) / rate(p),
                rate(p)
            );
            if extra.is_empty() {
                pct
            } else {
                format!("{extra}; {pct}")
            }
        }
        _ => extra.to_owned(),
    }
}

/// W4 over TLS: idle RSS with TLS on (target ≤ 10 MB), start → first 200 over HTTPS, and
/// the peak RSS of the W1–W3 TLS servers.
pub fn footprint_rows(records: &[Value]) -> Vec<Row> {
    let mut rows = Vec::new();
    let find = |id: &str| records.iter().find(|r| r["workload"] == id);
    if let Some(r) = find("W4-tls") {
        let idle = r["idle_rss_kb_median"].as_f64();
        rows.push(report::plain(
            "W4 idle RSS TLS",
            idle.map_or("?".into(), report::mb),
            "≤ 10 MB",
            idle.map(|kb| kb * 1024.0 <= 10e6),
            "--tls-cert/--tls-key, VmRSS 0.5 s after the first 200 from /healthz over HTTPS (median)".into(),
        ));
    }
    let peak = records
        .iter()
        .filter(|r| {
            matches!(
                r["workload"].as_str(),
                Some("W1-tls" | "W2a-tls" | "W2b-tls" | "W3a-tls" | "W3b-tls")
            )
        })
        .filter_map(|r| r["memory_end"]["hwm_kb"].as_f64())
        .fold(None::<f64>, |m, v| Some(m.map_or(v, |m| m.max(v))));
    if let Some(kb) = peak {
        rows.push(report::plain(
            "W4 peak RSS TLS (W1–W3)",
            report::mb(kb),
            "-",
            None,
            "max VmHWM over the W1–W3 TLS servers at the end of each run".into(),
        ));
    }
    if let Some(r) = find("W4-tls") {
        let ms = report::f(r, "startup_ms_median");
        rows.push(report::plain(
            "W4 start → first 200 TLS",
            format!("{ms:.1} ms"),
            "≤ 20 ms",
            Some(ms <= 20.0),
            "exec → 200 from /healthz over HTTPS (handshake included), median".into(),
        ));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// The generated certificate is served by a rustls server and trusted by the client
    /// (async and blocking paths), which then exchanges bytes over TLS.
    #[test]
    fn selfsigned_cert_serves_and_is_trusted() {
        let dir = std::env::temp_dir().join(format!("oauthd-bench-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        let arg = |k: &str, v: &std::path::Path| (k.to_owned(), v.display().to_string());
        selfsigned(&Args([arg("cert", &cert), arg("key", &key)].into())).unwrap();
        init(&Args([arg("tls-ca", &cert)].into())).unwrap();
        assert!(enabled());

        let chain = CertificateDer::pem_file_iter(&cert)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = rustls::pki_types::PrivateKeyDer::from_pem_file(&key).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));

        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move {
                while let Ok((tcp, _)) = listener.accept().await {
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        let Ok(mut s) = acceptor.accept(tcp).await else {
                            return;
                        };
                        let mut buf = [0u8; 5];
                        if s.read_exact(&mut buf).await.is_ok() {
                            let _ = s.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await;
                            let _ = s.shutdown().await;
                        }
                    });
                }
            });
            let mut s = connect(addr).await.unwrap();
            assert!(matches!(s, Stream::Tls(_)));
            s.write_all(b"hello").await.unwrap();
            s.flush().await.unwrap();
            let mut head = [0u8; 12];
            s.read_exact(&mut head).await.unwrap();
            assert_eq!(&head, b"HTTP/1.1 200");

            let head = tokio::task::spawn_blocking(move || blocking_exchange(addr, b"hello"))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(&head[9..12], b"200");
        });
        let _ = std::fs::remove_dir_all(&dir);
    }
}
