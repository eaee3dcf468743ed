//! `serve` refuses a database on a FUSE filesystem (where SQLite's locking is unreliable)
//! unless `--allow-network-fs` is given. Needs a real FUSE mount: `bindfs` (Debian package
//! `bindfs`), root and `/dev/fuse`. Where any of these is missing the test prints why and
//! passes without checking anything; the magic-number decision itself is unit-tested in
//! `src/fscheck.rs` for every filesystem.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::{assert_one_line_error, bin, Oauthd};

/// A bindfs (FUSE) view of a local directory, unmounted on drop.
struct FuseMount {
    point: PathBuf,
}

impl FuseMount {
    /// Mounts `source` at `point`, or says why that is impossible here.
    fn bind(source: &Path, point: &Path) -> Result<FuseMount, String> {
        if !Path::new("/dev/fuse").exists() {
            return Err("no /dev/fuse in this environment".into());
        }
        // SAFETY: geteuid has no preconditions.
        if unsafe { geteuid() } != 0 {
            return Err("not root (bindfs with allow_other needs it)".into());
        }
        std::fs::create_dir_all(source).map_err(|e| e.to_string())?;
        std::fs::create_dir_all(point).map_err(|e| e.to_string())?;
        let out = Command::new("bindfs")
            .arg(source)
            .arg(point)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("bindfs not available ({e}); apt-get install bindfs"))?;
        if !out.status.success() {
            return Err(format!(
                "bindfs could not mount: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(FuseMount {
            point: point.to_owned(),
        })
    }
}

impl Drop for FuseMount {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.point)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            for helper in ["fusermount3", "fusermount"] {
                if Command::new(helper)
                    .arg("-u")
                    .arg(&self.point)
                    .status()
                    .is_ok_and(|s| s.success())
                {
                    break;
                }
            }
        }
    }
}

extern "C" {
    fn geteuid() -> u32;
}

#[test]
fn serve_refuses_a_database_on_fuse_unless_allowed() {
    crate::support::sqlite_only!();
    let dir = tempfile::tempdir().expect("tempdir");
    let mount = match FuseMount::bind(&dir.path().join("local"), &dir.path().join("fuse")) {
        Ok(mount) => mount,
        Err(why) => {
            eprintln!("SKIPPED serve_refuses_a_database_on_fuse_unless_allowed: {why}");
            return;
        }
    };
    let db = mount.point.join("oauthd.db");

    // Refused: exit 1 before binding, one line naming the filesystem and the way out.
    let mut child = Command::new(bin())
        .env_remove("OAUTHD_ALLOW_NETWORK_FS")
        .env_remove("OAUTHD_DB")
        .arg("--db")
        .arg(&db)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn oauthd serve");
    let mut first_line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first_line)
        .expect("read stdout");
    if !first_line.is_empty() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("serve started on a FUSE filesystem: {first_line}");
    }
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_one_line_error(&stderr, "FUSE");
    assert!(stderr.contains("--allow-network-fs"), "{stderr}");
    assert!(!db.exists(), "the refused database must not be created");

    // Allowed: it serves, from the database on the mount.
    let o = Oauthd {
        dir: tempfile::tempdir().expect("tempdir"),
        db: db.clone(),
        pg: None,
    };
    let server = o.serve(&["--allow-network-fs"]);
    let health = crate::support::reply(crate::support::agent().get(&server.url("/healthz")).call());
    assert_eq!(health.status, 200, "{}", health.body);
    assert_eq!(server.stop().code(), Some(0));
    assert!(db.exists());
    drop(mount);
}
