//! The per-address connection cap (issue 8, item 11): one address holding idle
//! connections cannot take the slots every other client needs.
//!
//! On loopback every peer is 127.0.0.1 unless the client binds another loopback source
//! address (all of 127/8 is local on Linux), which is how a second client is emulated.

use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::flow_support::*;
use crate::support::{expect_exit, Oauthd};

/// A connection to `server` from source address `from`.
fn connect_from(from: &str, server: SocketAddr) -> TcpStream {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("runtime");
    let stream = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(format!("{from}:0").parse().expect("source"))
            .expect("bind source address");
        socket.connect(server).await.expect("connect")
    });
    let stream = stream.into_std().expect("std stream");
    stream.set_nonblocking(false).expect("blocking");
    stream
}

/// `GET /healthz` on `stream`; the status code.
fn healthz(mut stream: TcpStream) -> u16 {
    use std::io::Write;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("write");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Whether the server has closed `stream` (without waiting: an open idle connection has
/// nothing to read yet).
fn closed(mut stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).expect("nonblocking");
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) if e.kind() == ErrorKind::WouldBlock => false,
        Err(_) => true,
    }
}

/// Regression: one address could hold every connection slot with idle sockets, and a
/// new client then waited until the server's 10 s header timeout freed one. The check
/// is on order, not on a clock: the other client's answer must arrive while the idle
/// connections that got in are still open (before that timeout could have freed a slot).
#[test]
fn one_address_holding_idle_connections_does_not_starve_another() {
    let s = seeded(&["--max-connections", "8", "--max-connections-per-ip", "4"]);
    let idle: Vec<TcpStream> = (0..8)
        .map(|_| connect_from("127.0.0.1", s.server.addr))
        .collect();
    assert_eq!(healthz(connect_from("127.0.0.2", s.server.addr)), 200);
    let open = idle.iter().filter(|stream| !closed(stream)).count();
    assert_eq!(
        open, 4,
        "the first address keeps exactly its 4 connections, the other 4 were closed at once"
    );
}

#[test]
fn a_trusted_local_proxy_is_exempt_from_the_per_address_cap() {
    let o = Oauthd::new();
    o.add_user(EMAIL, PASSWORD);
    let server = o.serve_with(
        &["--trust-forwarded-for"],
        &[("OAUTHD_MAX_CONNECTIONS_PER_IP", "2")],
    );
    let idle: Vec<TcpStream> = (0..3)
        .map(|_| connect_from("127.0.0.1", server.addr))
        .collect();
    assert_eq!(healthz(connect_from("127.0.0.1", server.addr)), 200);
    assert!(idle.iter().all(|stream| !closed(stream)));
    // Without --trust-forwarded-for, loopback is an address like any other.
    let capped = o.serve_with(&[], &[("OAUTHD_MAX_CONNECTIONS_PER_IP", "2")]);
    let idle: Vec<TcpStream> = (0..3)
        .map(|_| connect_from("127.0.0.1", capped.addr))
        .collect();
    assert_eq!(healthz(connect_from("127.0.0.2", capped.addr)), 200);
    let open = idle.iter().filter(|stream| !closed(stream)).count();
    assert_eq!(open, 2);
}

#[test]
fn connection_caps_must_be_positive() {
    let o = Oauthd::new();
    expect_exit(&o, &["serve", "--max-connections-per-ip", "0"], 2);
    expect_exit(&o, &["serve", "--max-connections", "0"], 2);
}
