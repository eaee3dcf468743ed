//! A throwaway PostgreSQL cluster for tests: Debian's `postgresql` binaries, `initdb` into a
//! temporary folder, listening on a free loopback port (and a socket folder inside the
//! temporary one), trust authentication for the `oauthd` superuser, PostgreSQL's default
//! durability (fsync and synchronous_commit on).
//!
//! PostgreSQL refuses to run as root, and CI runs as root: then every PostgreSQL program
//! runs as the `postgres` system user the package creates (`runuser`), with the folder
//! given to it. A watchdog shell, whose stdin this process holds, stops the cluster and
//! removes the folder when the cluster is dropped or this process ends in any way, so a
//! cluster shared by a whole test binary ([`shared`]) does not outlive it.
//!
//! Also compiled into the unit tests of the `postgres` feature (`#[path]`), which run the
//! store's verbs against it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The superuser `initdb` creates; every URL connects as it.
const SUPERUSER: &str = "oauthd";

/// How long starting the cluster may take on a slow, loaded machine.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running throwaway cluster; dropping it stops it and removes its folder.
pub struct PgCluster {
    dir: PathBuf,
    port: u16,
    bin: PathBuf,
    /// `pg_ctl --options` it was started with (port, socket folder, address).
    options: String,
    /// The watchdog: closing its stdin stops the cluster and removes `dir`.
    watchdog: Option<Child>,
}

/// One cluster for the whole test binary, started at first use.
pub fn shared() -> &'static PgCluster {
    static SHARED: OnceLock<PgCluster> = OnceLock::new();
    SHARED.get_or_init(PgCluster::start)
}

impl PgCluster {
    /// Creates and starts a cluster, or panics saying why (PostgreSQL not installed, the
    /// `postgres` user missing when running as root, a start that failed with its log).
    pub fn start() -> PgCluster {
        let bin = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("oauthd-pg-")
            .tempdir()
            .expect("temporary folder for PostgreSQL")
            .keep();
        give_to_server(&dir);
        let data = dir.join("data");
        run_checked(
            as_postgres(&bin.join("initdb"))
                .arg("--pgdata")
                .arg(&data)
                .args(["--username", SUPERUSER, "--auth", "trust"])
                .args(["--encoding", "UTF8", "--locale", "C.UTF-8", "--no-sync"]),
        );
        std::fs::create_dir(dir.join("socket")).expect("socket folder");
        give_to_server(&dir.join("socket"));
        let mut last_failure = String::new();
        // A free port can be taken by another program before PostgreSQL binds it: retry.
        for _ in 0..5 {
            let port = free_port();
            let options = format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1",
                dir.join("socket").display()
            );
            let started = pg_ctl_start(&bin, &dir, &options)
                .output()
                .expect("run pg_ctl");
            if started.status.success() {
                let watchdog = watchdog(&bin, &dir);
                let cluster = PgCluster {
                    dir,
                    port,
                    bin,
                    options,
                    watchdog: Some(watchdog),
                };
                cluster.wait_ready();
                return cluster;
            }
            last_failure = format!(
                "{}\n{}",
                String::from_utf8_lossy(&started.stderr),
                std::fs::read_to_string(dir.join("log")).unwrap_or_default()
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
        panic!("PostgreSQL did not start: {last_failure}");
    }

    /// Stops the cluster at once, as a crash or a power cut would (no shutdown
    /// checkpoint: recovery replays the WAL), and starts it again on the same port.
    pub fn crash_and_restart(&self) {
        let data = self.dir.join("data");
        run_checked(
            as_postgres(&self.bin.join("pg_ctl"))
                .arg("--pgdata")
                .arg(&data)
                .args(["--mode", "immediate", "--wait", "stop"]),
        );
        run_checked(&mut pg_ctl_start(&self.bin, &self.dir, &self.options));
        self.wait_ready();
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `db` in this cluster.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{db}", self.port)
    }

    /// A new, empty database with a name unique in this process; its URL.
    pub fn new_database(&self) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "t{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        self.sql("postgres", &format!("CREATE DATABASE {name}"));
        self.url(&name)
    }

    /// Runs `sql` in database `db` with `psql` and returns its unaligned output.
    pub fn sql(&self, db: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(["--no-psqlrc", "--no-align", "--tuples-only", "--quiet"])
            .args(["--set", "ON_ERROR_STOP=1"])
            .args(["--host", "127.0.0.1", "--username", SUPERUSER])
            .arg("--port")
            .arg(self.port.to_string())
            .args(["--dbname", db, "--command", sql])
            .stdin(Stdio::null())
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// A plain-text `pg_dump` of database `db`: everything it stores, to search.
    pub fn dump(&self, db: &str) -> Vec<u8> {
        let out = Command::new(self.bin.join("pg_dump"))
            .args(["--host", "127.0.0.1", "--username", SUPERUSER])
            .arg("--port")
            .arg(self.port.to_string())
            .args(["--dbname", db])
            .stdin(Stdio::null())
            .output()
            .expect("run pg_dump");
        assert!(
            out.status.success(),
            "pg_dump {db}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Waits until the cluster answers a query (pg_ctl's wait can end a moment early).
    fn wait_ready(&self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let out = Command::new(self.bin.join("pg_isready"))
                .args(["--host", "127.0.0.1", "--port"])
                .arg(self.port.to_string())
                .stdin(Stdio::null())
                .output()
                .expect("run pg_isready");
            if out.status.success() {
                return;
            }
            assert!(Instant::now() < deadline, "PostgreSQL never became ready");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if let Some(mut watchdog) = self.watchdog.take() {
            drop(watchdog.stdin.take());
            let _ = watchdog.wait();
        }
    }
}

/// `pg_ctl start` of the cluster in `dir` with `options`, waiting until it runs.
fn pg_ctl_start(bin: &Path, dir: &Path, options: &str) -> Command {
    let mut command = as_postgres(&bin.join("pg_ctl"));
    command
        .arg("--pgdata")
        .arg(dir.join("data"))
        .arg("--log")
        .arg(dir.join("log"))
        .args(["--wait", "--timeout"])
        .arg(START_TIMEOUT.as_secs().to_string())
        .arg("--options")
        .arg(options)
        .arg("start")
        .stdin(Stdio::null());
    command
}

/// A shell that waits for its stdin to close, then stops the cluster at once (a
/// throwaway: no shutdown checkpoint) and removes the folder.
fn watchdog(bin: &Path, dir: &Path) -> Child {
    let stop = format!(
        "{}'{}' --pgdata '{}' --mode immediate --wait stop >/dev/null 2>&1",
        if is_root() {
            "runuser -u postgres -- "
        } else {
            ""
        },
        bin.join("pg_ctl").display(),
        dir.join("data").display()
    );
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "cat >/dev/null; {stop}; rm -rf '{}'",
            dir.display()
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start the PostgreSQL watchdog")
}

/// The newest installed PostgreSQL's programs, or a panic saying what to install.
fn bin_dir() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): \
             `apt-get install postgresql` (.ci/run installs it)"
        ),
    }
}

/// Makes `path` the PostgreSQL server's: when this process is root the server runs as
/// the `postgres` user.
pub fn give_to_server(path: &Path) {
    if is_root() {
        run_checked(Command::new("chown").arg("postgres:").arg(path));
    }
}

/// A command for a PostgreSQL program, as the `postgres` user when this process is root.
fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn run_checked(command: &mut Command) -> Output {
    let out = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn is_root() -> bool {
    // SAFETY: geteuid(2) cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
