//! Refusing databases on filesystems where SQLite's locking is unsafe: network
//! filesystems (NFS, SMB/CIFS) and FUSE, whose POSIX locks and mmap'd WAL index do not
//! behave as SQLite needs, so concurrent writers can corrupt the file.

use std::path::Path;

/// `statfs` f_type values of filesystems SQLite's documentation warns against.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
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
    unsafe_filesystem(kind)
}

/// The name of the filesystem whose `statfs` magic number is `f_type`, when it is one
/// SQLite cannot lock safely; `None` for local filesystems. Pure, so it is unit-tested
/// for every magic number without mounting anything. `f_type` is compared as the kernel
/// reports it on 64-bit targets (a positive number, even for 0xFF534D42).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub fn unsafe_filesystem(f_type: i64) -> Option<&'static str> {
    UNSAFE_FILESYSTEMS
        .iter()
        .find(|(magic, _)| *magic == f_type)
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
    fn network_and_fuse_filesystems_are_named() {
        for (magic, name) in UNSAFE_FILESYSTEMS {
            assert_eq!(unsafe_filesystem(*magic), Some(*name), "{magic:#x}");
        }
        // The magic numbers as the kernel's statfs(2) page lists them.
        assert_eq!(unsafe_filesystem(0x6969), Some("NFS"));
        assert_eq!(unsafe_filesystem(0xFF53_4D42), Some("CIFS"));
        assert_eq!(unsafe_filesystem(0x6573_5546), Some("FUSE"));
    }

    #[test]
    fn local_filesystems_pass() {
        for (magic, what) in [
            (0xEF53, "ext2/3/4"),
            (0x0102_1994, "tmpfs"),
            (0x9123_683E, "btrfs"),
            (0x5846_5342, "xfs"),
            (0x794C_7630, "overlayfs"),
            (0xF2F5_2010, "f2fs"),
            (0x2FC1_2FC1, "zfs"),
            (0, "zero"),
        ] {
            assert_eq!(unsafe_filesystem(magic), None, "{what}");
        }
    }

    #[test]
    fn local_temp_dir_is_accepted() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(refuse_network_fs(&dir.path().join("x.db")), Ok(()));
    }
}
