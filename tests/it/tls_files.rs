//! `serve --tls-cert --tls-key`: HTTPS with HTTP/2 and HTTP/1.1 by ALPN, TLS 1.2 and 1.3,
//! the full chain, HSTS, the https issuer, reload on SIGHUP, a bad pair refused at start,
//! and a plain-HTTP request to the HTTPS port failing at once.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use rustls::version::{TLS12, TLS13};

use crate::support::{assert_one_line_error, expect_exit, Oauthd, Server};
use crate::tls_support::{https_get, runtime, TestCa};

/// Starts `serve` with the certificate files given by environment variables.
fn serve_tls(o: &Oauthd, cert: &std::path::Path, key: &std::path::Path) -> Server {
    let server = o.serve_with(
        &[],
        &[
            ("OAUTHD_TLS_CERT", cert.to_str().expect("utf-8")),
            ("OAUTHD_TLS_KEY", key.to_str().expect("utf-8")),
        ],
    );
    assert!(server.https, "the listening line must say https://");
    server
}

#[test]
fn https_serves_http2_and_http1_with_the_full_chain_hsts_and_an_https_issuer() {
    let o = Oauthd::new();
    let ca = TestCa::new();
    let leaf = ca.leaf(o.dir.path(), "server");
    let server = serve_tls(&o, &leaf.cert, &leaf.key);
    let rt = runtime();

    let h2 = ca.client(&[b"h2", b"http/1.1"], &[&TLS13, &TLS12]);
    let r = rt
        .block_on(https_get(&h2, server.addr, "/healthz"))
        .expect("h2");
    assert_eq!(r.alpn.as_deref(), Some(&b"h2"[..]));
    assert_eq!(r.version, hyper::Version::HTTP_2);
    assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));
    assert_eq!(r.tls_version, Some(rustls::ProtocolVersion::TLSv1_3));
    assert_eq!(r.chain.len(), 2, "leaf and intermediate are served");
    assert_eq!(r.chain[0], leaf.der);
    let hsts = r.headers.get("strict-transport-security").expect("HSTS");
    assert!(hsts.to_str().expect("ascii").starts_with("max-age="));

    let h1 = ca.client(&[b"http/1.1"], &[&TLS12]);
    let r = rt
        .block_on(https_get(&h1, server.addr, "/no/such/path"))
        .expect("h1");
    assert_eq!(r.alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(r.version, hyper::Version::HTTP_11);
    assert_eq!(r.tls_version, Some(rustls::ProtocolVersion::TLSv1_2));
    assert_eq!(r.status, 404);
    assert!(
        r.headers.contains_key("strict-transport-security"),
        "HSTS on errors too"
    );

    let no_alpn = ca.client(&[], &[&TLS13]);
    let r = rt
        .block_on(https_get(
            &no_alpn,
            server.addr,
            "/.well-known/oauth-authorization-server",
        ))
        .expect("no ALPN");
    assert_eq!(r.version, hyper::Version::HTTP_11);
    let metadata: serde_json::Value = serde_json::from_str(&r.body).expect("json");
    assert_eq!(metadata["issuer"], format!("https://{}", server.addr));
}

#[test]
fn plain_http_to_the_https_port_fails_promptly() {
    let o = Oauthd::new();
    let ca = TestCa::new();
    let leaf = ca.leaf(o.dir.path(), "server");
    let server = serve_tls(&o, &leaf.cert, &leaf.key);
    let mut stream = std::net::TcpStream::connect(server.addr).expect("connect");
    // Far longer than the answer takes; only a hang would reach it.
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let started = Instant::now();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .expect("write");
    let mut answer = Vec::new();
    let read = stream.read_to_end(&mut answer);
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "the server kept a plain-HTTP connection open: {read:?}"
    );
    if let Err(e) = &read {
        assert!(
            !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "{e}"
        );
    }
    assert!(
        !String::from_utf8_lossy(&answer).contains("ok\n"),
        "plain HTTP must not be served on the HTTPS port"
    );
    // The server is unharmed.
    let client = ca.client(&[b"h2"], &[&TLS13]);
    let r = runtime()
        .block_on(https_get(&client, server.addr, "/healthz"))
        .expect("still serving");
    assert_eq!(r.status, 200);
}

#[test]
fn sighup_reloads_the_files_and_a_bad_pair_keeps_the_running_certificate() {
    let o = Oauthd::new();
    let ca = TestCa::new();
    let first = ca.leaf(o.dir.path(), "first");
    let live_cert = o.dir.path().join("live.crt");
    let live_key = o.dir.path().join("live.key");
    std::fs::copy(&first.cert, &live_cert).expect("copy");
    std::fs::copy(&first.key, &live_key).expect("copy");
    let server = serve_tls(&o, &live_cert, &live_key);
    let rt = runtime();
    let client = ca.client(&[b"h2"], &[&TLS13]);
    let served = |rt: &tokio::runtime::Runtime| {
        rt.block_on(https_get(&client, server.addr, "/healthz"))
            .expect("https")
            .chain[0]
            .clone()
    };
    assert_eq!(served(&rt), first.der);

    let second = ca.leaf(o.dir.path(), "second");
    std::fs::copy(&second.cert, &live_cert).expect("copy");
    std::fs::copy(&second.key, &live_key).expect("copy");
    server.signal(libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(30);
    while served(&rt) != second.der {
        assert!(Instant::now() < deadline, "not reloaded: {}", server.logs());
        std::thread::sleep(Duration::from_millis(50));
    }

    // A key that does not match: logged, and the second certificate stays.
    std::fs::copy(&first.key, &live_key).expect("copy");
    server.signal(libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !server.logs().contains("not reloaded") {
        assert!(Instant::now() < deadline, "no log line: {}", server.logs());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        server.logs().contains("does not belong"),
        "{}",
        server.logs()
    );
    assert_eq!(served(&rt), second.der);
}

#[test]
fn a_bad_or_mismatched_pair_is_refused_at_start() {
    let o = Oauthd::new();
    let ca = TestCa::new();
    let one = ca.leaf(o.dir.path(), "one");
    let other = ca.leaf(o.dir.path(), "other");
    let path = |p: &std::path::Path| p.to_str().expect("utf-8").to_owned();
    let serve = |files: &[&str], code: i32| {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(files);
        expect_exit(&o, &args, code)
    };
    let pair = |cert: &str, key: &str| serve(&["--tls-cert", cert, "--tls-key", key], 1);
    let stderr = pair(&path(&one.cert), &path(&other.key));
    assert_one_line_error(&stderr, "does not belong to the certificate");
    let missing = path(&o.dir.path().join("missing.pem"));
    assert_one_line_error(&pair(&missing, &path(&one.key)), "cannot read");
    assert_one_line_error(
        &pair(&path(&one.key), &path(&one.key)),
        "no PEM certificate",
    );
    assert_one_line_error(&pair(&path(&one.cert), &path(&one.cert)), "private key");
    // Half a pair is a usage error.
    serve(&["--tls-cert", &path(&one.cert)], 2);
}
