//! The database's files: which commands may create one, the mode of every file oauthd
//! creates, and the live database's siblings refused as backup destinations.

use std::os::unix::fs::PermissionsExt;

use crate::support::{agent, assert_one_line_error, expect_exit, path_in, reply, Oauthd};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

#[test]
fn commands_that_only_read_change_or_remove_refuse_a_missing_database() {
    crate::support::sqlite_only!();
    let o = Oauthd::new();
    let copy = path_in(&o, "copy.db");
    let copy = copy.to_str().expect("utf-8");
    for args in [
        &["check"][..],
        &["backup", copy],
        &["audit"],
        &["user", "list"],
        &["user", "show", "a@example.com"],
        &["user", "passwd", "a@example.com", "--password-stdin"],
        &["user", "disable", "a@example.com"],
        &["user", "enable", "a@example.com"],
        &["user", "remove", "a@example.com"],
        &["client", "list"],
        &["client", "show", "x"],
        &["client", "remove", "x"],
        &["client", "rotate-secret", "x"],
        &["brand", "list"],
        &["brand", "remove", "example.com"],
        &["org", "list"],
        &["org", "member", "add", "Acme", "a@example.com"],
        &["token", "revoke", "--all"],
    ] {
        let stderr = expect_exit(&o, args, 1);
        assert_one_line_error(&stderr, "no such file");
        assert!(stderr.contains("--db"), "{args:?}: a hint: {stderr}");
        let created: Vec<_> = std::fs::read_dir(o.dir.path())
            .expect("dir")
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        assert!(created.is_empty(), "{args:?} created {created:?}");
    }
    o.ok(&["org", "add", "Acme"]);
    assert!(o.db.exists(), "an add command creates the database");
    assert_eq!(o.json(&["org", "list"]).as_array().map(Vec::len), Some(1));
}

#[test]
fn every_file_oauthd_creates_is_private_to_its_owner() {
    crate::support::sqlite_only!();
    let o = Oauthd::new();
    o.add_user("ann@example.com", "pw");
    let server = o.serve(&[]);
    assert_eq!(
        reply(agent().get(&server.url("/healthz")).call()).status,
        200
    );
    let backup = path_in(&o, "backup.db");
    o.ok(&["backup", backup.to_str().expect("utf-8")]);
    let wal = crate::support::path_in(&o, "oauthd.db-wal");
    let shm = crate::support::path_in(&o, "oauthd.db-shm");
    for path in [&o.db, &wal, &shm, &backup] {
        assert_eq!(mode(path), 0o600, "{}", path.display());
    }
    drop(server);
}

#[test]
fn serve_and_check_warn_about_a_database_others_can_read() {
    crate::support::sqlite_only!();
    let o = Oauthd::new();
    o.add_user("ann@example.com", "pw");
    let check = o.cli(&["check"]);
    assert!(check.status.success());
    assert!(!String::from_utf8_lossy(&check.stderr).contains("readable by other"));
    std::fs::set_permissions(&o.db, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let check = o.cli(&["check"]);
    assert!(check.status.success(), "a warning, not a failure");
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(stderr.contains("readable by other users"), "{stderr}");
    assert!(stderr.contains("chmod 600"), "{stderr}");
    let server = o.serve(&[]);
    assert_eq!(
        reply(agent().get(&server.url("/healthz")).call()).status,
        200
    );
    let logs = server.logs();
    assert!(logs.contains("readable by other users"), "{logs}");
}

#[test]
fn backup_refuses_every_sibling_of_the_live_database() {
    crate::support::sqlite_only!();
    let o = Oauthd::new();
    o.add_user("ann@example.com", "pw");
    let _server = o.serve(&[]);
    for suffix in ["-wal", "-shm", "-journal"] {
        let sibling = path_in(&o, &format!("oauthd.db{suffix}"));
        let before = std::fs::read(&sibling).ok();
        let stderr = expect_exit(
            &o,
            &["backup", sibling.to_str().expect("utf-8"), "--force"],
            1,
        );
        assert_one_line_error(&stderr, "live database");
        assert_eq!(std::fs::read(&sibling).ok(), before, "{suffix} untouched");
    }
    assert_eq!(o.json(&["check"])["users"], 1);
}
