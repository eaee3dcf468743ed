//! The server's basic contract: the listening line, /healthz, 404, 405, 413, SIGTERM.

use crate::support::{agent, reply, Oauthd};

#[test]
fn serve_prints_address_and_answers_healthz() {
    let o = Oauthd::new();
    let server = o.serve(&[]);
    let r = reply(agent().get(&server.url("/healthz")).call());
    assert_eq!(r.status, 200);
    assert_eq!(r.body, "ok\n");
    let r = reply(agent().get(&server.url("/no/such/path")).call());
    assert_eq!(r.status, 404);
    let r = reply(agent().post(&server.url("/healthz")).send(""));
    assert_eq!(r.status, 405);
    assert!(
        server.stop().success(),
        "SIGTERM must stop the server cleanly"
    );
}

#[test]
fn serve_logs_a_hint_on_an_empty_database() {
    let o = Oauthd::new();
    let server = o.serve(&[]);
    reply(agent().get(&server.url("/healthz")).call());
    let logs = server.logs();
    assert!(logs.contains("oauthd user add"), "{logs}");
    assert!(logs.contains("oauthd client add"), "{logs}");
}

#[test]
fn serve_refuses_a_port_in_use() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let o = Oauthd::new();
    let out = o
        .command()
        .args(["serve", "--listen", &addr])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot listen on"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn an_unopenable_db_path_fails_at_once_with_one_line() {
    crate::support::sqlite_only!();
    let o = Oauthd::new();
    let missing_dir = o.dir.path().join("no/such/dir/oauthd.db");
    for args in [
        &["org", "add", "Acme"][..],
        &["serve", "--listen", "127.0.0.1:0"][..],
    ] {
        let started = std::time::Instant::now();
        let out = std::process::Command::new(crate::support::bin())
            .arg("--db")
            .arg(&missing_dir)
            .args(args)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains("cannot open database"), "{stderr}");
        assert!(out.stdout.is_empty());
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "took {:?}",
            started.elapsed()
        );
    }
}
