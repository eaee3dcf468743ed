//! `oauthd restore BACKUP`: refuses while a server runs, refuses a bad backup, keeps the
//! old files, and never applies a stale `-wal` from a crashed server to the restored copy.

use crate::flow_support::{login_code, seeded};
use crate::support::{assert_one_line_error, expect_exit, path_in, Oauthd};

fn emails(o: &Oauthd) -> Vec<String> {
    o.json(&["user", "list"])
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|u| u["email"].as_str().map(str::to_owned))
        .collect()
}

fn names_in(o: &Oauthd) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(o.dir.path())
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        // The lock file restore and serve share stays; it holds nothing.
        .filter(|name| !name.ends_with(".lock"))
        .collect();
    names.sort();
    names
}

#[test]
fn restore_after_a_crash_ignores_the_stale_wal_and_keeps_the_old_files() {
    crate::support::sqlite_only!();
    let s = seeded(&[]);
    let backup = path_in(&s.o, "backup.db");
    let backup_arg = backup.to_str().expect("utf-8");
    s.o.ok(&["backup", backup_arg]);
    // Changes after the backup, left in the -wal by a crash.
    s.o.add_user("after-backup@example.com", "pw");
    for _ in 0..3 {
        login_code(&s.server, serde_json::json!({}));
    }
    let stderr = expect_exit(&s.o, &["restore", backup_arg], 1);
    assert_one_line_error(&stderr, "a server is running");
    drop(s.server); // SIGKILL
    let wal = path_in(&s.o, "oauthd.db-wal");
    assert!(
        std::fs::metadata(&wal)
            .map(|m| m.len() > 0)
            .unwrap_or(false),
        "the crash left a non-empty -wal"
    );
    let stale_wal = std::fs::read(&wal).expect("read wal");
    let out = s.o.cli(&["restore", backup_arg, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let check: serde_json::Value = serde_json::from_slice(&out.stdout).expect("check json");
    assert_eq!(check["integrity"], "ok");
    assert_eq!(emails(&s.o), [crate::flow_support::EMAIL]);
    let names = names_in(&s.o);
    let kept: Vec<&String> = names
        .iter()
        .filter(|n| n.contains(".before-restore-"))
        .collect();
    assert!(
        kept.iter()
            .any(|n| n.starts_with("oauthd.db.before-restore-")),
        "{names:?}"
    );
    let kept_wal = kept
        .iter()
        .find(|n| n.starts_with("oauthd.db-wal.before-restore-"))
        .unwrap_or_else(|| panic!("old -wal kept: {names:?}"));
    assert_eq!(
        std::fs::read(path_in(&s.o, kept_wal)).expect("read"),
        stale_wal,
        "kept unchanged"
    );
    assert_eq!(
        std::fs::metadata(&s.o.db)
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
            .expect("stat"),
        0o600
    );
    assert!(
        !names.iter().any(|n| n.contains(".restoring-")),
        "{names:?}"
    );
    // The kept files are the old database, whole: it still has the later user.
    let old = Oauthd {
        dir: tempfile::tempdir().expect("tmp"),
        db: path_in(&s.o, "old.db"),
        pg: None,
    };
    let old_db = kept
        .iter()
        .find(|n| n.starts_with("oauthd.db.before"))
        .expect("old db");
    std::fs::copy(path_in(&s.o, old_db), &old.db).expect("copy");
    std::fs::copy(path_in(&s.o, kept_wal), path_in(&s.o, "old.db-wal")).expect("copy");
    assert!(emails(&old).contains(&"after-backup@example.com".to_owned()));
}

#[test]
fn restore_refuses_a_backup_that_is_not_a_sound_oauthd_database() {
    crate::support::sqlite_only!();
    let o = Oauthd::new();
    o.add_user("ann@example.com", "pw");
    let notes = path_in(&o, "notes.txt");
    std::fs::write(
        &notes,
        b"not a database at all, just some notes\n".repeat(50),
    )
    .expect("write");
    let foreign = path_in(&o, "foreign.db");
    rusqlite::Connection::open(&foreign)
        .and_then(|c| c.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);"))
        .expect("foreign db");
    let before = names_in(&o);
    let live = std::fs::read(&o.db).expect("read");
    for (backup, reason) in [
        (&notes, "not an SQLite database"),
        (&foreign, "not an oauthd database"),
        (&path_in(&o, "missing.db"), "backup"),
        (&o.db.clone(), "the database itself"),
    ] {
        let stderr = expect_exit(&o, &["restore", backup.to_str().expect("utf-8")], 1);
        assert_one_line_error(&stderr, reason);
        assert_eq!(names_in(&o), before, "nothing moved or left behind");
        assert_eq!(std::fs::read(&o.db).expect("read"), live);
    }
    assert_eq!(emails(&o), ["ann@example.com"]);
}
