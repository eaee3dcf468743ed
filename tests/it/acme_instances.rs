//! ACME with two `oauthd serve` on one PostgreSQL database (issue 15), against the real
//! pebble: one instance orders at a time and the other serves what it stored, renewals
//! included, without a restart; and a challenge offered by one instance is answered by
//! the other (the CA may reach either behind a load balancer), over TLS-ALPN-01 and
//! HTTP-01.

use sha2::{Digest, Sha256};

use crate::acme_support::{
    alpn_challenge_certificate, free_port, plain_http, serve_on, the_ca_gone_for,
    wait_for_certificate, Pebble, Served, DOMAIN,
};
use crate::pg_support;
use crate::support::{Oauthd, Server};

fn is_pebbles(served: &Served) -> bool {
    served.leaf().0.contains("Pebble")
}

/// How many orders the two instances placed: by their logs, and at pebble.
fn orders(a: &Server, b: &Server, pebble: &Pebble) -> usize {
    let started = |s: &Server| s.logs().matches("ACME: requesting a certificate").count();
    let (by_a, by_b) = (started(a), started(b));
    eprintln!("orders by A: {by_a}, by B: {by_b}");
    assert_eq!(
        by_a + by_b,
        pebble.orders(),
        "every order the instances logged reached pebble, and no other\n{}",
        pebble.log()
    );
    by_a + by_b
}

#[test]
fn two_instances_order_one_certificate_and_each_serves_the_other_ones_renewal() {
    two_instances_share_their_certificate(Challenge::TlsAlpn01);
}

#[test]
fn two_instances_share_their_certificate_over_http_01() {
    two_instances_share_their_certificate(Challenge::Http01);
}

#[derive(Clone, Copy, PartialEq)]
enum Challenge {
    TlsAlpn01,
    Http01,
}

/// Pebble validates at C, a third instance that never orders for DOMAIN (its own name's CA
/// is unreachable): whichever of A and B orders, C answers from the database, as an
/// instance behind a load balancer answers the CA. Certificates live 20 s: a renewal is
/// due 13 s after each issuance.
fn two_instances_share_their_certificate(challenge: Challenge) {
    let o = Oauthd::on_postgres_cluster(pg_support::shared());
    let (port_a, port_b, port_c, http_c) = (free_port(), free_port(), free_port(), free_port());
    let (pebble_http, pebble_tls) = match challenge {
        Challenge::TlsAlpn01 => (free_port(), port_c),
        Challenge::Http01 => (http_c, free_port()),
    };
    let pebble = Pebble::start(o.dir.path(), pebble_http, pebble_tls, Some(20));
    let with_http = |mut flags: Vec<String>, port: u16| {
        if challenge == Challenge::Http01 {
            flags.extend(["--http-listen".into(), format!("127.0.0.1:{port}")]);
        }
        flags
    };
    let c = serve_on(
        &o,
        port_c,
        &with_http(the_ca_gone_for("validator.example.com"), http_c),
    );
    let a = serve_on(&o, port_a, &with_http(pebble.flags(), free_port()));
    let b = serve_on(&o, port_b, &with_http(pebble.flags(), free_port()));

    let first = wait_for_certificate(port_a, &a, &pebble, is_pebbles);
    let at_b = wait_for_certificate(port_b, &b, &pebble, |s| s.chain[0] == first.chain[0]);
    assert_eq!(at_b.leaf(), first.leaf(), "both serve the one certificate");
    assert_eq!(
        orders(&a, &b, &pebble),
        1,
        "one order for both\nA: {}\nB: {}",
        a.logs(),
        b.logs()
    );

    // The renewal, by whichever instance takes the lease, is served by both.
    let renewed = wait_for_certificate(port_a, &a, &pebble, |s| {
        is_pebbles(s) && s.chain[0] != first.chain[0]
    });
    assert!(renewed.leaf().1 > first.leaf().1, "a later not-after");
    wait_for_certificate(port_b, &b, &pebble, |s| s.chain[0] == renewed.chain[0]);
    assert_eq!(
        orders(&a, &b, &pebble),
        2,
        "one order per renewal\nA: {}\nB: {}",
        a.logs(),
        b.logs()
    );
    let stored = o.sql("SELECT domains FROM acme_certificates WHERE chain_pem IS NOT NULL");
    assert_eq!(stored.trim(), DOMAIN);
    assert!(!a.logs().contains("PRIVATE KEY") && !b.logs().contains("PRIVATE KEY"));
    assert!(
        !c.logs().contains(&format!("domains={DOMAIN}")),
        "C never ordered for {DOMAIN}: {}",
        c.logs()
    );
}

#[test]
fn an_instance_answers_the_challenges_another_instance_offered() {
    let o = Oauthd::on_postgres_cluster(pg_support::shared());
    let (port, http_port) = (free_port(), free_port());
    // This instance cannot order (its CA is unreachable); it answers what the other
    // instance offers through the database, as the CA would ask it.
    let mut flags = the_ca_gone_for(DOMAIN);
    flags.extend(["--http-listen".into(), format!("127.0.0.1:{http_port}")]);
    let server = serve_on(&o, port, &flags);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let future = now + 300;
    o.sql(&format!(
        "INSERT INTO acme_challenges (kind, name, key_authorization, expires_at) VALUES
         ('http-01', 'tok-1', 'tok-1.thumbprint', {future}),
         ('tls-alpn-01', '{DOMAIN}', 'alpn-token.thumbprint', {future}),
         ('http-01', 'old', 'old.thumbprint', 1)"
    ));

    let get = |token: &str| {
        plain_http(
            http_port,
            &format!("GET /.well-known/acme-challenge/{token} HTTP/1.1\r\nHost: {DOMAIN}\r\nConnection: close\r\n\r\n"),
        )
    };
    let answer = get("tok-1");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("\r\n\r\ntok-1.thumbprint"), "{answer}");
    for unknown in ["old", "tok-2"] {
        let answer = get(unknown);
        assert!(answer.starts_with("HTTP/1.1 404"), "{unknown}: {answer}");
    }

    let leaf = alpn_challenge_certificate(port)
        .unwrap_or_else(|e| panic!("TLS-ALPN-01 handshake: {e}\n{}", server.logs()));
    let (_, cert) = x509_parser::parse_x509_certificate(&leaf).expect("parses");
    // id-pe-acmeIdentifier: an OCTET STRING holding SHA-256 of the key authorization.
    let identifier = cert
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == "1.3.6.1.5.5.7.1.31")
        .expect("the acmeIdentifier extension");
    assert!(identifier.critical);
    let mut want = vec![0x04, 0x20];
    want.extend(Sha256::digest(b"alpn-token.thumbprint"));
    assert_eq!(identifier.value, want.as_slice());
}
