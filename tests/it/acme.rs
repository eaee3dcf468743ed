//! `serve --acme-domain`: certificates from a real ACME server (Debian's pebble, which
//! really validates TLS-ALPN-01 and HTTP-01 against oauthd), kept in the database:
//! issuance, a restart serving the stored certificate while the CA is down, renewal of a
//! short-lived certificate, a refused challenge, `tls status`, and the port-80 listener.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::acme_support::{
    free_port, https_healthz, plain_http, serve_on, serve_with_the_ca_gone, wait_for_certificate,
    wait_for_log, Pebble, DOMAIN,
};
use crate::support::Oauthd;

fn is_pebbles(served: &crate::acme_support::Served) -> bool {
    served.leaf().0.contains("Pebble")
}

/// Sends a plain-HTTP request to the HTTPS port: it must fail within a few seconds.
fn assert_plain_http_fails_promptly(port: u16) {
    let start = Instant::now();
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let _ = tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "plain HTTP to the HTTPS port must fail at once"
    );
    assert!(
        !String::from_utf8_lossy(&answer).contains("200 OK"),
        "no HTTP answer over plain TCP"
    );
}

#[test]
fn tls_alpn_01_issues_and_a_restart_serves_the_stored_certificate_while_the_ca_is_down() {
    let o = Oauthd::new();
    let port = free_port();
    let pebble = Pebble::start(o.dir.path(), free_port(), port, None);
    let server = serve_on(&o, port, &pebble.flags());
    assert!(server.https, "the listening line says https://");
    let served = wait_for_certificate(port, &server, &pebble, is_pebbles);
    let (issuer, not_after, names) = served.leaf();
    assert_eq!(names, vec![DOMAIN.to_owned()]);
    assert!(
        served.chain.len() >= 2,
        "the full chain is served: {issuer}"
    );
    assert!(
        served.response.starts_with("HTTP/1.1 200"),
        "{}",
        served.response
    );
    assert!(served
        .response
        .to_ascii_lowercase()
        .contains("strict-transport-security"));
    let logs = wait_for_log(&server, "ACME: certificate issued");
    assert!(!logs.contains("PRIVATE KEY"), "no key in the log");
    assert_plain_http_fails_promptly(port);

    let status = o.json(&["tls", "status"]);
    let cert = &status["certificates"][0];
    assert_eq!(cert["domains"], serde_json::json!([DOMAIN]));
    assert_eq!(cert["not_after_unix"], serde_json::json!(not_after));
    assert!(cert["issuer"].as_str().expect("issuer").contains("Pebble"));
    assert!(cert["last_error"].is_null());
    let text = o.ok(&["tls", "status"]);
    assert!(
        text.contains(DOMAIN) && text.contains("next renewal"),
        "{text}"
    );

    // The CA goes away; the database alone brings HTTPS back with the same certificate.
    drop(server);
    drop(pebble);
    let server = serve_with_the_ca_gone(&o, port);
    let again = https_healthz(port).expect("the stored certificate is served at once");
    assert_eq!(again.chain[0], served.chain[0], "the same certificate");
    assert!(again.response.starts_with("HTTP/1.1 200"));
    assert!(
        !server.logs().contains("ACME: requesting"),
        "nothing due yet"
    );
}

#[test]
fn http_01_issues_through_the_http_listener_which_redirects_everything_else() {
    let o = Oauthd::new();
    let (port, http_port) = (free_port(), free_port());
    // Nothing listens on pebble's TLS-ALPN-01 port: only HTTP-01 can succeed.
    let pebble = Pebble::start(o.dir.path(), http_port, free_port(), None);
    let mut flags = pebble.flags();
    flags.extend(["--http-listen".into(), format!("127.0.0.1:{http_port}")]);
    let server = serve_on(&o, port, &flags);
    // Before the first certificate, handshakes are refused at once, not hung.
    let start = Instant::now();
    let early = https_healthz(port);
    assert!(start.elapsed() < Duration::from_secs(5));
    if let Ok(early) = early {
        assert!(
            is_pebbles(&early),
            "only an issued certificate is ever served"
        );
    }
    let served = wait_for_certificate(port, &server, &pebble, is_pebbles);
    assert_eq!(served.leaf().2, vec![DOMAIN.to_owned()]);

    let answer = plain_http(
        http_port,
        &format!("POST /token?x=1 HTTP/1.1\r\nHost: {DOMAIN}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
    );
    assert!(answer.starts_with("HTTP/1.1 308"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains(&format!("location: https://{DOMAIN}:{port}/token?x=1")),
        "{answer}"
    );
}

#[test]
fn a_short_lived_certificate_is_renewed_and_kept_when_renewal_fails() {
    let o = Oauthd::new();
    let port = free_port();
    let pebble = Pebble::start(o.dir.path(), free_port(), port, Some(15));
    let server = serve_on(&o, port, &pebble.flags());
    let first = wait_for_certificate(port, &server, &pebble, is_pebbles);
    // Renewal is due 10 s into the 15 s lifetime.
    let renewed = wait_for_certificate(port, &server, &pebble, |s| {
        is_pebbles(s) && s.chain[0] != first.chain[0]
    });
    assert!(renewed.leaf().1 > first.leaf().1, "a later not-after");

    drop(pebble);
    let logs = wait_for_log(&server, "still serving the stored certificate");
    assert!(logs.contains("ACME: certificate not issued"), "{logs}");
    let kept = https_healthz(port).expect("still serving");
    assert!(kept.chain[0] == renewed.chain[0] || is_pebbles(&kept));
    let status = o.json(&["tls", "status"]);
    assert!(
        status["certificates"][0]["last_error"].is_string(),
        "{status}"
    );
}

#[test]
fn a_refused_challenge_is_logged_clearly_and_the_server_keeps_running() {
    let o = Oauthd::new();
    let (port, http_port) = (free_port(), free_port());
    // Pebble validates HTTP-01 on a port where nothing answers.
    let pebble = Pebble::start(o.dir.path(), free_port(), free_port(), None);
    let mut flags = pebble.flags();
    flags.extend(["--http-listen".into(), format!("127.0.0.1:{http_port}")]);
    let mut server = serve_on(&o, port, &flags);
    let logs = wait_for_log(&server, "ACME: certificate not issued");
    assert!(logs.contains("challenge refused"), "{logs}");
    assert!(
        logs.contains("TLS handshakes are refused until one is issued"),
        "{logs}"
    );
    assert!(
        server.child.try_wait().expect("wait").is_none(),
        "still running"
    );
    let status = o.json(&["tls", "status"]);
    let error = status["certificates"][0]["last_error"]
        .as_str()
        .expect("last error")
        .to_owned();
    assert!(error.contains("challenge refused"), "{error}");
    // The plain-HTTP listener still answers.
    let answer = plain_http(
        http_port,
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 308"), "{answer}");
}

/// Writes a self-signed certificate valid for `days` more days and returns its path.
fn certificate_file(dir: &std::path::Path, days: i64) -> std::path::PathBuf {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(vec![DOMAIN.to_owned()]).expect("params");
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(days);
    let cert = params.self_signed(&key).expect("cert");
    let path = dir.join(format!("cert-{days}.pem"));
    std::fs::write(&path, cert.pem()).expect("write");
    path
}

#[test]
fn check_fails_on_a_certificate_expiring_within_fourteen_days() {
    let o = Oauthd::new();
    o.add_user("a@example.com", "correct horse battery");
    let fresh = certificate_file(o.dir.path(), 60);
    let out = o.ok(&["check", "--tls-cert", fresh.to_str().expect("utf-8")]);
    assert!(!out.contains("expiring soon"), "{out}");

    let soon = certificate_file(o.dir.path(), 6);
    let out = o.cli(&["check", "--tls-cert", soon.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1), "check fails");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("expiring soon: the certificate"),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("expires"), "{stderr}");
    let json = o.cli(&[
        "check",
        "--json",
        "--tls-cert",
        soon.to_str().expect("utf-8"),
    ]);
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(
        report["expiring_certificates"].as_array().map(Vec::len),
        Some(1),
        "{report}"
    );
}
