//! Refusing databases on filesystems where SQLite's locking is unsafe: network
//! filesystems (NFS, SMB/CIFS) and FUSE, whose POSIX locks and mmap'd WAL index do not
//! behave as SQLite needs, so concurrent writers can corrupt the file.

use std::path::Path;

/// `statfs` f_type values of filesystems SQLite's documentation warns against.
#[cfg(target_os = "linux")]
const UNSAFE_FILESYSTEMS: &[(i64, &str)] = &[
    (0x6969, "NFS"),
    (0x517B, "SMB"),
    (0xFF53_4D42, "CIFS"),
    (0xFE53_4D42, "SMB2"),
    (0x6573_5546, "FUSE"),
    (0x0102_1997, "9P"),
];

/// `Err(message)` when the directory holding `db` is on a filesystem listed above.
pub fn refuse_network_fs(db: &Path) -> Result<(), String> {
    let dir = match db.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match filesystem_kind(dir) {
        Some(kind) => Err(format!(
            "{}: the database is on a {kind} filesystem, where SQLite's file locking is unreliable \
             and the file can be corrupted; move it to a local disk, or pass --allow-network-fs \
             (OAUTHD_ALLOW_NETWORK_FS=true) if only this one process will ever open it",
            db.display()
        )),
        None => Ok(()),
    }
}

#[cfg(target_os = "linux")]
fn filesystem_kind(dir: &Path) -> Option<&'static str> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut stats: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a valid NUL-terminated string and `stats` a writable statfs.
    if unsafe { libc::statfs(path.as_ptr(), &mut stats) } != 0 {
        return None;
    }
    #[allow(clippy::unnecessary_cast)]
    let kind = stats.f_type as i64;
    UNSAFE_FILESYSTEMS
        .iter()
        .find(|(magic, _)| *magic == kind)
        .map(|(_, name)| *name)
}

#[cfg(not(target_os = "linux"))]
fn filesystem_kind(_dir: &Path) -> Option<&'static str> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_temp_dir_is_accepted() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(refuse_network_fs(&dir.path().join("x.db")), Ok(()));
    }
}
