//! A database file removed or replaced under a running server: writes and reads answer
//! 503, `/healthz` says why, nothing is re-created at the path, and a database renamed
//! over the live one is not corrupted by the old `-wal`.

use crate::flow_support::{login, login_body, login_code, seeded, EMAIL};
use crate::support::{agent, reply, Oauthd};

fn siblings(o: &Oauthd) -> [std::path::PathBuf; 3] {
    ["oauthd.db", "oauthd.db-wal", "oauthd.db-shm"].map(|name| o.dir.path().join(name))
}

/// Many logins at once, so the server's pool would open new connections if it could.
fn burst_of_logins(server: &crate::support::Server) -> Vec<u16> {
    let threads: Vec<_> = (0..12)
        .map(|_| {
            let url = server.url("/api/oauth_login");
            std::thread::spawn(move || {
                reply(
                    agent()
                        .post(&url)
                        .header("content-type", "application/json")
                        .send(login_body(serde_json::json!({})).to_string()),
                )
                .status
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().expect("join"))
        .collect()
}

#[test]
fn a_removed_database_refuses_writes_says_unhealthy_and_is_not_recreated() {
    crate::support::sqlite_only!();
    let s = seeded(&[]);
    login_code(&s.server, serde_json::json!({}));
    for path in siblings(&s.o) {
        let _ = std::fs::remove_file(path);
    }
    let r = login(&s.server, &login_body(serde_json::json!({})));
    assert_eq!(r.status, 503, "a login after rm: {}", r.body);
    assert!(r.header("retry-after").is_some(), "503 carries Retry-After");
    assert!(
        burst_of_logins(&s.server)
            .iter()
            .all(|&status| status == 503),
        "nothing answered 200 into the deleted file"
    );
    let health = reply(agent().get(&s.server.url("/healthz")).call());
    assert_eq!(health.status, 503);
    assert!(health.body.contains("removed"), "{}", health.body);
    for path in siblings(&s.o) {
        assert!(!path.exists(), "{} was re-created", path.display());
    }
    assert!(s.server.stop().success());
    for path in siblings(&s.o) {
        assert!(
            !path.exists(),
            "{} was re-created at shutdown",
            path.display()
        );
    }
}

#[test]
fn a_database_renamed_over_the_live_one_is_refused_and_stays_intact() {
    crate::support::sqlite_only!();
    let other = Oauthd::new();
    other.add_user("other@example.com", "pw");
    other.add_client("other-app", &["https://other.example/cb"]);
    let s = seeded(&[]);
    // Leaves committed pages in the live -wal, as any busy server has.
    for _ in 0..5 {
        login_code(&s.server, serde_json::json!({}));
    }
    std::fs::rename(&other.db, &s.o.db).expect("rename over the live database");
    let r = login(&s.server, &login_body(serde_json::json!({})));
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(
        burst_of_logins(&s.server)
            .iter()
            .all(|&status| status == 503),
        "nothing answered 200 from or into a file the path no longer names"
    );
    let health = reply(agent().get(&s.server.url("/healthz")).call());
    assert_eq!(health.status, 503);
    assert!(health.body.contains("replaced"), "{}", health.body);
    // A crash now leaves the old -wal beside the new file.
    drop(s.server);
    let check = s.o.json(&["check"]);
    assert_eq!(check["integrity"], "ok", "{check}");
    let users = s.o.json(&["user", "list"]);
    let emails: Vec<&str> = users
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|u| u["email"].as_str())
        .collect();
    assert_eq!(emails, ["other@example.com"], "not {EMAIL}");
}

#[test]
fn an_idle_server_empties_the_old_wal_of_a_replaced_database_before_a_crash() {
    crate::support::sqlite_only!();
    let other = Oauthd::new();
    other.add_user("other@example.com", "pw");
    let s = seeded(&[]);
    for _ in 0..5 {
        login_code(&s.server, serde_json::json!({}));
    }
    std::fs::rename(&other.db, &s.o.db).expect("rename over the live database");
    // No request: the server must notice by itself.
    let started = std::time::Instant::now();
    while !s.server.logs().contains("old WAL was emptied") {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "the replacement was not noticed: {}",
            s.server.logs()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    drop(s.server); // SIGKILL
    assert_eq!(s.o.json(&["check"])["integrity"], "ok");
    let users = s.o.json(&["user", "list"]);
    assert_eq!(users.as_array().map(Vec::len), Some(1), "{users}");
    assert_eq!(users[0]["email"], "other@example.com");
}
