//! What the server and CLI say about a database they cannot use: permission denied,
//! read-only (mode, mount), busy, corrupt, and a full disk under a running server. Real
//! mounts (tmpfs) and a real unprivileged user (`nobody`); each test prints why it skips
//! where the machine does not allow that.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::flow_support::{login, login_body, CLIENT_ID, EMAIL, PASSWORD, REDIRECT};
use crate::support::{agent, reply, Oauthd, Server};

const NOBODY: u32 = 65534;

fn is_root() -> bool {
    // SAFETY: geteuid(2) cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Runs the CLI as `nobody` (supplementary groups dropped by std when root sets the uid).
fn as_nobody(o: &Oauthd, args: &[&str]) -> Output {
    let mut command = o.command();
    command
        .uid(NOBODY)
        .gid(NOBODY)
        .args(args)
        .stdin(Stdio::null());
    command.output().expect("run as nobody")
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn refused(out: &Output, args: &str, expected: &str) {
    let stderr = stderr_of(out);
    assert_eq!(out.status.code(), Some(1), "{args}: {stderr}");
    assert!(
        stderr.contains(expected),
        "{args}: expected {expected:?}: {stderr}"
    );
    assert!(
        !stderr.contains("not an SQLite database"),
        "{args}: {stderr}"
    );
}

/// `serve` must exit at once; a server that starts anyway is killed and reported.
fn serve_refusal(mut command: Command) -> Output {
    let mut child = command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!("serve started instead of refusing: {}", stderr_of(&out));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

#[test]
fn each_unusable_database_gets_its_own_message() {
    crate::support::sqlite_only!();
    if !is_root() {
        eprintln!("skipped: needs root to act as the unprivileged user nobody");
        return;
    }
    let o = Oauthd::new();
    std::os::unix::fs::chown(o.dir.path(), Some(NOBODY), Some(NOBODY)).expect("chown");

    // Another user's private database.
    o.add_user("root@example.com", "pw");
    refused(
        &as_nobody(&o, &["user", "list"]),
        "not readable",
        "permission denied",
    );
    for name in ["oauthd.db", "oauthd.db-wal", "oauthd.db-shm"] {
        let _ = std::fs::remove_file(o.dir.path().join(name));
    }

    // A directory this user may not write: SQLite cannot create -wal and -shm.
    let out = as_nobody(&o, &["org", "add", "Acme"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    // Where the -wal and -shm files still exist (a CLI connection may close only at exit),
    // writing needs no new file and succeeds: close the database cleanly first, so SQLite
    // checkpoints and removes both, and the case tested is the one named.
    let closing = rusqlite::Connection::open(&o.db).expect("open to close cleanly");
    closing
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .expect("checkpoint");
    drop(closing);
    for sibling in ["oauthd.db-wal", "oauthd.db-shm"] {
        assert!(
            !o.dir.path().join(sibling).exists(),
            "{sibling} left behind"
        );
    }
    chmod(o.dir.path(), 0o555);
    let out = as_nobody(&o, &["org", "add", "Beta"]);
    refused(&out, "read-only dir", "permission denied");
    refused(&out, "read-only dir", "may not create files in");
    // Reading may work there (it needs no new file when SQLite finds what it needs);
    // when it cannot, it must say why, never "not an SQLite database".
    let out = as_nobody(&o, &["user", "list"]);
    if !out.status.success() {
        refused(&out, "reading in a read-only dir", "permission denied");
    }
    chmod(o.dir.path(), 0o755);

    // A file this user may read but not write.
    chmod(&o.db, 0o400);
    refused(
        &as_nobody(&o, &["org", "add", "Gamma"]),
        "mode 400",
        "read-only",
    );
    let mut serve = o.command();
    serve.uid(NOBODY).gid(NOBODY);
    refused(&serve_refusal(serve), "serve on mode 400", "read-only");
    chmod(&o.db, 0o600);

    // Busy: another process holds the exclusive lock.
    {
        let holder = rusqlite::Connection::open(&o.db).expect("open");
        holder
            .execute_batch("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; COMMIT;")
            .expect("lock");
        refused(&o.cli(&["user", "list"]), "locked", "busy");
    }

    // Corrupt: a valid header over a damaged schema page.
    let mut bytes = std::fs::read(&o.db).expect("read");
    bytes[100..2000].fill(0xAB);
    std::fs::write(&o.db, &bytes).expect("damage");
    refused(&o.cli(&["user", "list"]), "damaged", "corrupt");
}

/// A tmpfs of `size` mounted inside the test's directory, unmounted on drop.
pub struct Tmpfs {
    pub dir: PathBuf,
}

impl Tmpfs {
    /// `None` (the test skips, saying why) where mounting is impossible (not root, no
    /// tmpfs); under `CI=true`, where the tests run as root, that is a failure instead.
    pub fn mount(o: &Oauthd, size: &str) -> Option<Tmpfs> {
        let dir = o.dir.path().join("mnt");
        std::fs::create_dir(&dir).expect("mkdir");
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(&dir)
            .output();
        let why = match out {
            Ok(out) if out.status.success() => return Some(Tmpfs { dir }),
            Ok(out) => format!("cannot mount a tmpfs: {}", stderr_of(&out).trim()),
            Err(e) => format!("cannot run mount: {e}"),
        };
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{why} (CI runs the tests as root, where this must work)"
        );
        eprintln!("skipped: {why}");
        None
    }

    /// A tmpfs of `size` and an `Oauthd` whose database lives in it (the rest of the
    /// test's files stay outside).
    pub fn with_database(size: &str) -> Option<(Tmpfs, Oauthd)> {
        let o = Oauthd::new();
        let mnt = Tmpfs::mount(&o, size)?;
        let o = Oauthd {
            db: mnt.dir.join("oauthd.db"),
            dir: o.dir,
            pg: None,
        };
        Some((mnt, o))
    }

    /// Fills the filesystem to the last byte with the file `filler`; removing that file
    /// frees it again.
    pub fn fill(&self) -> PathBuf {
        use std::io::Write;
        let filler = self.dir.join("filler");
        let mut file = std::fs::File::create(&filler).expect("filler");
        let block = vec![0u8; 4096];
        while file.write_all(&block).is_ok() {}
        let _ = file.write_all(&[0u8; 1]);
        filler
    }

    pub fn remount(&self, options: &str) {
        let out = Command::new("mount")
            .args(["-o", options])
            .arg(&self.dir)
            .output()
            .expect("mount");
        assert!(
            out.status.success(),
            "remount {options}: {}",
            stderr_of(&out)
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).output();
    }
}

/// `server`'s database fills `mnt`: once full, every login is answered 503 with
/// Retry-After (never 500, none lost silently), `/healthz` says writes are failing, the
/// failures are logged a few times only; freed, the next login works and `/healthz` is
/// healthy again, without a restart.
pub fn full_disk_fails_writes_then_recovers(server: &Server, mnt: &Tmpfs) {
    assert_eq!(
        login(server, &login_body(serde_json::json!({}))).status,
        200
    );

    let filler = mnt.fill();
    let mut failed = 0;
    let mut retry_after = None;
    for _ in 0..3000 {
        let r = login(server, &login_body(serde_json::json!({})));
        if r.status == 503 {
            failed += 1;
            retry_after = r.header("retry-after").map(str::to_owned);
            if failed >= 200 {
                break;
            }
        } else {
            assert_eq!(r.status, 200, "{}", r.body);
        }
    }
    assert!(failed >= 200, "only {failed} logins failed on a full disk");
    assert!(retry_after.is_some(), "the 503 carries Retry-After");
    let health = reply(agent().get(&server.url("/healthz")).call());
    assert_eq!(health.status, 503, "{}", health.body);
    assert!(
        health.body.contains("writes are failing"),
        "{}",
        health.body
    );
    let logged = server
        .logs()
        .lines()
        .filter(|line| line.contains("ERROR"))
        .count();
    assert!(
        logged <= 20,
        "{failed} failed writes logged {logged} error lines:\n{}",
        server.logs()
    );

    std::fs::remove_file(&filler).expect("free the disk");
    assert_eq!(
        login(server, &login_body(serde_json::json!({}))).status,
        200
    );
    let health = reply(agent().get(&server.url("/healthz")).call());
    assert_eq!(
        health.status, 200,
        "healthy again once writes work: {}",
        health.body
    );
}

#[test]
fn serve_refuses_a_database_on_a_read_only_mount() {
    crate::support::sqlite_only!();
    let Some((mnt, o)) = Tmpfs::with_database("8m") else {
        return;
    };
    o.add_user(EMAIL, PASSWORD);
    let before = std::fs::read(&o.db).expect("read");
    mnt.remount("remount,ro");
    refused(&serve_refusal(o.command()), "read-only mount", "read-only");
    assert_eq!(std::fs::read(&o.db).expect("read"), before);
    drop(mnt);
}

#[test]
fn a_full_disk_answers_503_with_retry_after_logs_once_and_recovers() {
    crate::support::sqlite_only!();
    let Some((mnt, o)) = Tmpfs::with_database("2m") else {
        return;
    };
    o.add_user(EMAIL, PASSWORD);
    o.add_client(CLIENT_ID, &[REDIRECT]);
    let server = o.serve(&[]);
    full_disk_fails_writes_then_recovers(&server, &mnt);
    drop(server);
    drop(mnt);
}

#[test]
fn healthz_reports_a_database_that_became_read_only() {
    crate::support::sqlite_only!();
    if !is_root() {
        eprintln!("skipped: needs root to act as the unprivileged user nobody");
        return;
    }
    let o = Oauthd::new();
    std::os::unix::fs::chown(o.dir.path(), Some(NOBODY), Some(NOBODY)).expect("chown");
    let out = as_nobody(&o, &["org", "add", "Acme"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let mut command = o.command();
    command
        .uid(NOBODY)
        .gid(NOBODY)
        .args(["serve", "--listen", "127.0.0.1:0"]);
    let server = crate::support::Server::spawn(command);
    assert_eq!(
        reply(agent().get(&server.url("/healthz")).call()).status,
        200
    );
    chmod(&o.db, 0o400);
    let health = reply(agent().get(&server.url("/healthz")).call());
    assert_eq!(health.status, 503, "{}", health.body);
    assert!(health.body.contains("read-only"), "{}", health.body);
    assert!(health.header("retry-after").is_some());
    chmod(&o.db, 0o600);
    assert_eq!(
        reply(agent().get(&server.url("/healthz")).call()).status,
        200
    );
}

/// Logins from 8 threads, and the disk filled while they run: once it is full some are
/// still answered 200 (the WAL reuses its space after a checkpoint), the rest 503. Every
/// code answered 200 was committed: after the disk is freed and the server killed
/// (SIGKILL) and restarted, each one is exchanged.
#[test]
fn every_code_answered_on_a_full_disk_survives_a_crash() {
    crate::support::sqlite_only!();
    let Some((mnt, o)) = Tmpfs::with_database("2m") else {
        return;
    };
    o.add_user(EMAIL, PASSWORD);
    let secret = o.add_client(CLIENT_ID, &[REDIRECT]);
    let server = o.serve(&[]);
    let succeeded = std::sync::atomic::AtomicUsize::new(0);
    let full = std::sync::atomic::AtomicBool::new(false);
    let (answers, filler) = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    let mut seen = Vec::new();
                    while seen.len() < 60 {
                        let r = login(&server, &login_body(serde_json::json!({})));
                        let code = (r.status == 200)
                            .then(|| r.json()["oauthCode"].as_str().map(str::to_owned))
                            .flatten();
                        succeeded.fetch_add(usize::from(code.is_some()), Ordering::SeqCst);
                        // Only answers given once the disk is full count.
                        if full.load(Ordering::SeqCst) {
                            seen.push((r.status, code));
                        }
                    }
                    seen
                })
            })
            .collect();
        let start = Instant::now();
        while succeeded.load(Ordering::SeqCst) < 40 && start.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(5));
        }
        let filler = mnt.fill();
        full.store(true, Ordering::SeqCst);
        let answers: Vec<(u16, Option<String>)> = threads
            .into_iter()
            .flat_map(|t| t.join().expect("logins"))
            .collect();
        (answers, filler)
    });
    for (status, _) in &answers {
        assert!([200, 503].contains(status), "status {status}");
    }
    let failed = answers.iter().filter(|(status, _)| *status == 503).count();
    assert!(
        failed >= 20,
        "only {failed} of {} logins failed",
        answers.len()
    );
    let codes: Vec<&String> = answers.iter().filter_map(|(_, c)| c.as_ref()).collect();
    eprintln!(
        "on the full disk: {} logins answered 200, {failed} answered 503",
        codes.len()
    );

    std::fs::remove_file(&filler).expect("free the disk");
    drop(server); // SIGKILL
    let server = o.serve(&[]);
    for code in codes {
        let r = crate::flow_support::exchange_as(&server, (CLIENT_ID, &secret), code);
        assert_eq!(r.status, 200, "a code answered 200 was lost: {}", r.body);
    }
    drop(server);
    drop(mnt);
}
