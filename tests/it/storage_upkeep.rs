//! The database files over time: the WAL shrinks again after a long reader, reading
//! commands never take the write lock, a clean stop leaves the `.db` complete, and a stop
//! does not wait for queued password hashes or slow clients beyond `--shutdown-timeout`.

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::flow_support::{exchange, login_code, seeded, tokens};
use crate::support::{expect_exit, Oauthd};

fn wal_of(db: &Path) -> PathBuf {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    PathBuf::from(wal)
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

#[test]
fn reading_commands_run_while_another_connection_holds_the_write_lock() {
    crate::support::sqlite_only!();
    let o = Oauthd::new();
    o.add_user("a@example.com", "pw");
    o.add_client("app", &["https://app.example.com/cb"]);
    let holder = rusqlite::Connection::open(&o.db).expect("open");
    holder.execute_batch("BEGIN IMMEDIATE").expect("write lock");
    let backup = o.dir.path().join("copy.db");
    let backup = backup.to_str().expect("utf-8");
    for args in [
        &["check"][..],
        &["user", "list"],
        &["user", "show", "a@example.com"],
        &["client", "list"],
        &["client", "show", "app"],
        &["brand", "list"],
        &["org", "list"],
        &["audit"],
        &["backup", backup],
    ] {
        let started = Instant::now();
        o.ok(args);
        // Waiting for the lock would take the whole 10 s busy timeout, then fail.
        assert!(
            started.elapsed() < Duration::from_secs(9),
            "{args:?} waited for the write lock"
        );
    }
    holder.execute_batch("ROLLBACK").expect("release");
}

#[test]
fn reading_commands_refuse_a_missing_or_unmigrated_database_and_create_nothing() {
    crate::support::sqlite_only!();
    let o = Oauthd::new();
    let stderr = expect_exit(&o, &["user", "list"], 1);
    assert!(stderr.contains("no such file"), "{stderr}");
    assert!(!o.db.exists(), "a reading command created the database");
    o.add_user("a@example.com", "pw");
    rusqlite::Connection::open(&o.db)
        .and_then(|c| c.execute_batch("PRAGMA user_version = 0"))
        .expect("downgrade");
    let before = std::fs::read(&o.db).expect("read");
    let stderr = expect_exit(&o, &["check"], 1);
    assert!(stderr.contains("schema version 0"), "{stderr}");
    assert_eq!(std::fs::read(&o.db).expect("read"), before);
}

#[test]
fn the_wal_shrinks_to_a_few_mb_once_a_long_reader_ends() {
    crate::support::sqlite_only!();
    let s = seeded(&[]);
    let wal = wal_of(&s.o.db);
    // A long reader (like a slow `oauthd check`) pins its snapshot: the WAL must grow.
    let reader = rusqlite::Connection::open(&s.o.db).expect("open");
    reader
        .execute_batch("BEGIN; SELECT count(*) FROM users;")
        .expect("read transaction");
    let grown = 8 * 1024 * 1024;
    let started = Instant::now();
    while file_len(&wal) < grown {
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "the WAL never grew past {grown} bytes ({})",
            file_len(&wal)
        );
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..25 {
                        login_code(&s.server, json!({}));
                    }
                });
            }
        });
    }
    let peak = file_len(&wal);
    reader.execute_batch("COMMIT").expect("end reader");
    drop(reader);
    // The writer is idle now: the WAL goes back to a few MB (in fact to zero).
    let limit = 4 * 1024 * 1024;
    let started = Instant::now();
    while file_len(&wal) > limit {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the WAL stayed at {} bytes (peak {peak})",
            file_len(&wal)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_clean_stop_leaves_every_write_in_the_database_file_alone() {
    crate::support::sqlite_only!();
    let s = seeded(&[]);
    s.o.add_user("other@example.com", "pw");
    let code = login_code(&s.server, json!({}));
    let (access_token, _) = tokens(&exchange(&s, &code));
    assert!(!access_token.is_empty());
    s.o.ok(&["user", "disable", "other@example.com"]);
    let status = s.server.stop();
    assert!(status.success(), "{status:?}");
    let copy_dir = tempfile::tempdir().expect("tempdir");
    let copy = copy_dir.path().join("only.db");
    std::fs::copy(&s.o.db, &copy).expect("copy the .db alone");
    let conn = rusqlite::Connection::open(&copy).expect("open copy");
    let tokens: i64 = conn
        .query_row("SELECT count(*) FROM access_tokens", [], |r| r.get(0))
        .expect("count");
    assert_eq!(tokens, 1, "the token issued before the stop");
    let disabled: bool = conn
        .query_row(
            "SELECT disabled FROM users WHERE email = 'other@example.com'",
            [],
            |r| r.get(0),
        )
        .expect("user");
    assert!(disabled, "the CLI's last write");
}

#[test]
fn a_stop_cancels_queued_password_hashes() {
    let o = Oauthd::new();
    o.add_client("123", &["http://acme.com"]);
    // Correct passwords (no throttling delays), each costing a slow hash.
    let iterations = "2000000";
    let added = o
        .command()
        .env("OAUTHD_PBKDF2_ITERATIONS", iterations)
        .args(["user", "add", "slow@example.com", "--password-stdin"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child.stdin.take().expect("stdin").write_all(b"pw\n")?;
            child.wait()
        })
        .expect("user add");
    assert!(added.success());
    let server = o.serve_with(
        &["--shutdown-timeout", "300"],
        &[("OAUTHD_PBKDF2_ITERATIONS", iterations)],
    );
    let url = server.url("/api/oauth_login");
    let logins = 40;
    let statuses = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..logins)
            .map(|_| {
                let url = url.clone();
                scope.spawn(move || {
                    let body = json!({
                        "email": "slow@example.com", "password": "pw",
                        "scope": "xx", "response_type": "code", "state": "s",
                        "redirect_uri": "http://acme.com", "client_id": "123"
                    });
                    // No client timeout: uncancelled, the queue takes minutes to drain.
                    let patient: ureq::Agent = ureq::Agent::config_builder()
                        .http_status_as_error(false)
                        .timeout_global(Some(Duration::from_secs(600)))
                        .build()
                        .into();
                    patient
                        .post(&url)
                        .header("content-type", "application/json")
                        .send(body.to_string())
                        .map(|r| r.status().as_u16())
                        .unwrap_or(0)
                })
            })
            .collect();
        // Let the logins reach the hashing queue, then stop.
        std::thread::sleep(Duration::from_secs(1));
        let status = server.stop();
        assert!(status.success(), "{status:?}");
        handles
            .into_iter()
            .map(|h| h.join().expect("join"))
            .collect::<Vec<u16>>()
    });
    // Uncancelled, every queued login is hashed and answered 200 before the server exits.
    let hashed = statuses.iter().filter(|s| **s == 200).count();
    assert!(
        hashed <= logins / 2,
        "{hashed} of {logins} queued logins were still hashed after SIGTERM: {statuses:?}"
    );
}

#[test]
fn a_stop_waits_no_longer_than_the_shutdown_timeout_for_a_slow_client() {
    let o = Oauthd::new();
    let server = o.serve(&["--shutdown-timeout", "1"]);
    let mut slow = TcpStream::connect(server.addr).expect("connect");
    slow.write_all(
        b"POST /api/oauth_login HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{",
    )
    .expect("send the start of a request");
    // The request is now in flight; its body never completes.
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let status = server.stop();
    let took = started.elapsed();
    assert!(status.success(), "{status:?}");
    // Uncapped, the drain would wait for the 10 s body timeout.
    assert!(took < Duration::from_secs(8), "stopping took {took:?}");
    drop(slow);
}
