//! Spawning the real binary: a temporary database per test, CLI invocations, and a
//! running server whose address is read from its one `listening on` stdout line.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_oauthd")
}

/// Whether this run's tests use PostgreSQL: the environment variable
/// `OAUTHD_TEST_STORE=postgres`. Unset or `sqlite` is the default, a temporary SQLite
/// file per test; anything else is a mistake worth stopping for.
pub fn on_postgres() -> bool {
    match std::env::var("OAUTHD_TEST_STORE").as_deref() {
        Err(_) | Ok("" | "sqlite") => false,
        Ok("postgres") => true,
        Ok(other) => panic!("OAUTHD_TEST_STORE={other:?}: expected `sqlite` or `postgres`"),
    }
}

/// Ends the test early on PostgreSQL, saying so: for tests about the SQLite file itself
/// (its path, its WAL, its locks, opening it with rusqlite), which have no PostgreSQL
/// meaning and must not pass there silently.
macro_rules! sqlite_only {
    () => {
        if $crate::support::on_postgres() {
            eprintln!("skipped on postgres: about the SQLite file");
            return;
        }
    };
}
pub(crate) use sqlite_only;

/// What `oauthd check` reports as `integrity` on the store under test: SQLite's own
/// check of the file, which PostgreSQL leaves to itself.
pub fn expected_integrity() -> &'static str {
    if on_postgres() {
        "not checked (PostgreSQL checks its own storage)"
    } else {
        "ok"
    }
}

/// A temporary directory holding one database, with helpers to run the CLI against it.
/// The database is the file `db` in it, or with `OAUTHD_TEST_STORE=postgres` a fresh
/// database in the one throwaway cluster the test process shares (`pg`, its URL), given
/// as `--db` to every CLI call and `serve`. PBKDF2 runs at the minimum 1000 iterations
/// unless a test says otherwise, so tests stay fast on a slow machine.
pub struct Oauthd {
    pub dir: tempfile::TempDir,
    /// The SQLite file (not created on PostgreSQL).
    pub db: PathBuf,
    /// The PostgreSQL database's URL, when the run is on PostgreSQL.
    pub pg: Option<String>,
}

impl Oauthd {
    pub fn new() -> Oauthd {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("oauthd.db");
        let pg = on_postgres().then(|| crate::pg_support::shared().new_database());
        Oauthd { dir, db, pg }
    }

    /// A temporary SQLite file, whatever `OAUTHD_TEST_STORE` says: for tests whose
    /// subject is an SQLite file (the source of `migrate --to`).
    pub fn on_sqlite() -> Oauthd {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("oauthd.db");
        Oauthd { dir, db, pg: None }
    }

    /// A fresh database in `cluster`, whatever `OAUTHD_TEST_STORE` says: for tests about
    /// several instances sharing PostgreSQL, or about the cluster itself (a restart).
    pub fn on_postgres_cluster(cluster: &crate::pg_support::PgCluster) -> Oauthd {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("oauthd.db");
        let pg = Some(cluster.new_database());
        Oauthd { dir, db, pg }
    }

    /// What `--db` says: the PostgreSQL URL or the SQLite file's path.
    pub fn db_arg(&self) -> std::ffi::OsString {
        match &self.pg {
            Some(url) => url.into(),
            None => self.db.clone().into(),
        }
    }

    /// A `Command` for the binary with `--db` and fast hashing set.
    pub fn command(&self) -> Command {
        let mut command = Command::new(bin());
        command
            .env_remove("OAUTHD_DB")
            .env_remove("OAUTHD_LISTEN")
            .env("OAUTHD_PBKDF2_ITERATIONS", "1000")
            .arg("--db")
            .arg(self.db_arg());
        command
    }

    /// Runs the CLI with `args` and empty (non-terminal) stdin.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.command()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run oauthd")
    }

    /// Runs the CLI with `args`, feeding `input` on stdin.
    pub fn cli_stdin(&self, args: &[&str], input: &str) -> Output {
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn oauthd");
        // A command that refuses its arguments may exit before it reads its input.
        if let Err(e) = child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
        {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write stdin: {e}");
        }
        child.wait_with_output().expect("wait")
    }

    /// Runs the CLI and insists it succeeded; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert_success(&out, args);
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// Runs the CLI with `--json`, insists on success, parses stdout.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut with_json = args.to_vec();
        with_json.push("--json");
        let stdout = self.ok(&with_json);
        serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("{args:?}: stdout is not JSON ({e}): {stdout}"))
    }

    /// Adds a user with `password` (via --password-stdin).
    pub fn add_user(&self, email: &str, password: &str) -> serde_json::Value {
        let out = self.cli_stdin(
            &["user", "add", email, "--password-stdin", "--json"],
            &format!("{password}\n"),
        );
        assert_success(&out, &["user", "add", email]);
        serde_json::from_slice(&out.stdout).expect("user add json")
    }

    /// Registers a confidential client; returns its secret.
    pub fn add_client(&self, id: &str, redirect_uris: &[&str]) -> String {
        let mut args = vec!["client", "add", "--name", "Test App", "--id", id];
        for uri in redirect_uris {
            args.extend(["--redirect-uri", uri]);
        }
        let value = self.json(&args);
        value["client_secret"]
            .as_str()
            .expect("client_secret")
            .to_owned()
    }

    /// Registers a public client (no secret).
    pub fn add_public_client(&self, id: &str, redirect_uris: &[&str], extra: &[&str]) {
        let mut args = vec![
            "client",
            "add",
            "--name",
            "Public App",
            "--id",
            id,
            "--public",
        ];
        for uri in redirect_uris {
            args.extend(["--redirect-uri", uri]);
        }
        args.extend(extra);
        self.json(&args);
    }

    /// Starts `oauthd serve` on a free loopback port with `extra` serve flags.
    pub fn serve(&self, extra: &[&str]) -> Server {
        self.serve_with(extra, &[])
    }

    /// As [`Oauthd::serve`], with extra environment variables.
    pub fn serve_with(&self, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let mut command = self.command();
        command
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .args(extra);
        for (k, v) in env {
            command.env(k, v);
        }
        Server::spawn(command)
    }
}

pub fn assert_success(out: &Output, args: &[&str]) {
    assert!(
        out.status.success(),
        "oauthd {args:?} failed ({:?})\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A running `oauthd serve`. Killed (SIGKILL) when dropped; use [`Server::stop`] for a
/// graceful SIGTERM.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub stderr: Arc<Mutex<String>>,
    /// The listening line said `https://`.
    pub https: bool,
}

impl Server {
    pub fn spawn(mut command: Command) -> Server {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn oauthd serve");
        let stderr = Arc::new(Mutex::new(String::new()));
        collect(child.stderr.take().expect("stderr"), Arc::clone(&stderr));
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read stdout");
        let https = line.starts_with("listening on https://");
        let Some(addr) = line
            .trim()
            .strip_prefix("listening on http://")
            .or_else(|| line.trim().strip_prefix("listening on https://"))
        else {
            let _ = child.kill();
            let _ = child.wait();
            std::thread::sleep(Duration::from_millis(100));
            panic!(
                "unexpected first stdout line {line:?}; stderr: {}",
                stderr.lock().expect("lock")
            );
        };
        let addr = addr.parse().expect("address");
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = stdout.read_to_end(&mut sink);
        });
        Server {
            child,
            addr,
            stderr,
            https,
        }
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe {
            libc_kill(self.child.id() as i32, 15);
        }
        self.child.wait().expect("wait")
    }

    /// Sends `signal` (e.g. SIGHUP) without waiting.
    pub fn signal(&self, signal: i32) {
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe {
            libc_kill(self.child.id() as i32, signal);
        }
    }

    /// Everything the server wrote to stderr so far.
    pub fn logs(&self) -> String {
        self.stderr.lock().expect("lock").clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, signal: i32) -> i32;
}

fn collect(stream: ChildStderr, into: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
            into.lock().expect("lock").push_str(&line);
            line.clear();
        }
    });
}

/// A plain HTTP/1.1 client for tests: no redirects followed, any status returned.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// Reads a response's status, headers of interest, and body text.
pub struct Reply {
    pub status: u16,
    pub headers: ureq::http::HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub fn reply(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
    let mut response = response.expect("HTTP request failed");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.body_mut().read_to_string().unwrap_or_default();
    Reply {
        status,
        headers,
        body,
    }
}

/// A path inside the test's temp dir.
pub fn path_in(o: &Oauthd, name: &str) -> PathBuf {
    o.dir.path().join(name)
}

pub fn exists(path: &Path) -> bool {
    path.exists()
}

/// Runs the CLI, insists it exited with `code` and printed nothing on stdout; returns
/// stderr. For refusals: usage errors (2) and runtime errors (1).
pub fn expect_exit(o: &Oauthd, args: &[&str], code: i32) -> String {
    expect_output_exit(&o.cli(args), args, code)
}

/// As [`expect_exit`], for an `Output` already collected (e.g. with stdin input).
pub fn expect_output_exit(out: &Output, args: &[&str], code: i32) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "oauthd {args:?}: expected exit {code}\nstdout: {}\nstderr: {stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        out.stdout.is_empty(),
        "oauthd {args:?}: stdout not empty: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

/// A runtime error is one line on stderr, prefixed `oauthd: `.
pub fn assert_one_line_error(stderr: &str, contains: &str) {
    assert!(stderr.starts_with("oauthd: "), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(contains),
        "expected {contains:?} in {stderr}"
    );
}

/// Inserts a live grant with one access and one refresh token straight into the
/// database, as the server would after a login, so admin commands that revoke tokens can
/// be tested without driving the sign-in flow.
pub fn seed_grant(o: &Oauthd, email: &str, client_id: &str) {
    let grant = o.sql(&format!(
        "INSERT INTO grants (user_id, client_id, created_at) \
         SELECT id, '{client_id}', 0 FROM users WHERE email = '{email}' RETURNING id"
    ));
    assert!(!grant.is_empty(), "no user {email}");
    let hash = |tag: &str| o.blob(&format!("{tag}{grant:0>31}").into_bytes()[..32]);
    o.sql(&format!(
        "INSERT INTO access_tokens (token_hash, grant_id, created_at, expires_at) \
         VALUES ({}, {grant}, 0, 99999999999)",
        hash("a")
    ));
    o.sql(&format!(
        "INSERT INTO refresh_tokens (token_hash, grant_id, created_at) VALUES ({}, {grant}, 0)",
        hash("r")
    ));
}

impl Oauthd {
    /// Runs one SQL statement on the test's database, whichever the store, and returns
    /// its rows as psql's unaligned output does: columns joined by `|`, one row a line
    /// (NULL as nothing). For tests that seed or inspect what the CLI cannot.
    pub fn sql(&self, sql: &str) -> String {
        if let Some(url) = &self.pg {
            let name = url.rsplit('/').next().expect("database name");
            return crate::pg_support::shared().sql(name, sql);
        }
        let conn = rusqlite::Connection::open(&self.db).expect("open the SQLite file");
        let mut stmt = conn.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        let columns = stmt.column_count();
        let mut rows = stmt.query([]).unwrap_or_else(|e| panic!("{sql}: {e}"));
        let mut lines = Vec::new();
        while let Some(row) = rows.next().unwrap_or_else(|e| panic!("{sql}: {e}")) {
            let fields: Vec<String> = (0..columns)
                .map(|i| match row.get_ref(i).expect("column") {
                    rusqlite::types::ValueRef::Null => String::new(),
                    rusqlite::types::ValueRef::Integer(n) => n.to_string(),
                    rusqlite::types::ValueRef::Real(x) => x.to_string(),
                    rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into(),
                    rusqlite::types::ValueRef::Blob(b) => format!("\\x{}", hex(b)),
                })
                .collect();
            lines.push(fields.join("|"));
        }
        lines.join("\n")
    }

    /// `bytes` as a literal of the test's store (SQLite `X'…'`, PostgreSQL `'\x…'`).
    pub fn blob(&self, bytes: &[u8]) -> String {
        if self.pg.is_some() {
            format!("'\\x{}'::bytea", hex(bytes))
        } else {
            format!("X'{}'", hex(bytes))
        }
    }
}

impl Oauthd {
    /// Everything the store holds on disk, to search for secrets that must never be
    /// stored in clear: the SQLite file and its `-wal`, `-shm` and `-journal` siblings
    /// (those that exist), or a `pg_dump` of the PostgreSQL database.
    pub fn stored_bytes(&self) -> Vec<(String, Vec<u8>)> {
        if let Some(url) = &self.pg {
            let name = url.rsplit('/').next().expect("database name");
            return vec![("pg_dump".into(), crate::pg_support::shared().dump(name))];
        }
        ["", "-wal", "-shm", "-journal"]
            .iter()
            .filter_map(|suffix| {
                let path = format!("{}{suffix}", self.db.display());
                std::fs::read(&path).ok().map(|bytes| (path, bytes))
            })
            .collect()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// (live access tokens, live refresh tokens) as `oauthd check` counts them.
pub fn live_tokens(o: &Oauthd) -> (i64, i64) {
    let check = o.json(&["check"]);
    (
        check["live_access_tokens"].as_i64().expect("n"),
        check["live_refresh_tokens"].as_i64().expect("n"),
    )
}

/// A valid `width`×`height` PNG filled with one `rgb` colour, built by hand (stored
/// deflate blocks, CRC-32, Adler-32) so tests need no image crate. Small sizes only: the
/// whole image must fit one stored block (≤ 65535 bytes of scanlines).
pub fn solid_png(width: u32, height: u32, rgb: [u8; 3]) -> Vec<u8> {
    // Each scanline: filter type 0 (none), then the pixels.
    let mut row = vec![0u8];
    row.extend(rgb.iter().copied().cycle().take(3 * width as usize));
    let scanlines = row.repeat(height as usize);
    assert!(
        scanlines.len() <= 0xffff,
        "solid_png is for small images only"
    );
    let len = scanlines.len() as u16;
    let mut zlib = vec![0x78, 0x01, 0x01];
    zlib.extend_from_slice(&len.to_le_bytes());
    zlib.extend_from_slice(&(!len).to_le_bytes());
    zlib.extend_from_slice(&scanlines);
    zlib.extend_from_slice(&adler32(&scanlines).to_be_bytes());

    let mut header = Vec::new();
    header.extend_from_slice(&width.to_be_bytes());
    header.extend_from_slice(&height.to_be_bytes());
    header.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB, no interlace

    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png_chunk(&mut png, b"IHDR", &header);
    png_chunk(&mut png, b"IDAT", &zlib);
    png_chunk(&mut png, b"IEND", &[]);
    png
}

fn png_chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    png.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = png.len();
    png.extend_from_slice(kind);
    png.extend_from_slice(data);
    let crc = crc32(&png[start..]);
    png.extend_from_slice(&crc.to_be_bytes());
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in bytes {
        a = (a + u32::from(byte)) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

/// Creates `o.db` as an empty file (an empty database to SQLite), private like every file
/// oauthd creates: only `add` commands create a missing database.
pub fn create_empty_db(o: &Oauthd) {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&o.db)
        .expect("create empty database");
}

/// A usage error is clap's report on stderr (exit 2): `error: invalid value …`.
pub fn assert_usage_error(stderr: &str, contains: &str) {
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(
        stderr.contains(contains),
        "expected {contains:?} in {stderr}"
    );
}
