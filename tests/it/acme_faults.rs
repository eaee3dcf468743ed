//! ACME renewal when the database cannot store the certificate (a full disk: a real
//! tmpfs filled to the last byte, under a real pebble CA): the renewed certificate is
//! served at once and kept in memory, the storage error is logged without a key, the CA
//! is not asked again in a loop, `/healthz` answers 503 "disk is full", and once the disk
//! has room the certificate is stored whole (chain with its key), so a restart serves it.

use std::time::{Duration, Instant};

use crate::acme_support::{
    free_port, https_healthz, serve_on, serve_with_the_ca_gone, wait_for_certificate, wait_for_log,
    Pebble, Served, DEADLINE,
};
use crate::db_faults::Tmpfs;
use crate::support::Oauthd;

/// Pebble's certificate lifetime here: renewal is due two thirds in (16 s).
const VALIDITY_SECS: u64 = 24;

fn is_pebbles(served: &Served) -> bool {
    served.leaf().0.contains("Pebble")
}

/// The stored certificate's not-after as `tls status` reports it, and its last error.
fn stored(o: &Oauthd) -> (Option<i64>, Option<String>) {
    let status = o.json(&["tls", "status"]);
    let cert = &status["certificates"][0];
    (
        cert["not_after_unix"].as_i64(),
        cert["last_error"].as_str().map(str::to_owned),
    )
}

/// Polls `tls status` until `accept` likes what is stored.
fn wait_for_stored(
    o: &Oauthd,
    what: &str,
    accept: impl Fn(&(Option<i64>, Option<String>)) -> bool,
) {
    let start = Instant::now();
    loop {
        let now = stored(o);
        if accept(&now) {
            return;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{what}: tls status says {now:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A few seconds on, the server has asked the CA twice only (the first issuance and
/// the renewal: `why` the renewal is not asked for again), and serves `expected`; its
/// `/healthz` answer.
fn assert_not_asked_again(
    server: &crate::support::Server,
    port: u16,
    why: &str,
    expected: &Served,
) -> String {
    std::thread::sleep(Duration::from_secs(3));
    let logs = server.logs();
    let requests = logs.matches("ACME: requesting a certificate").count();
    assert_eq!(requests, 2, "one issuance, one renewal; {why}:\n{logs}");
    let served = https_healthz(port).expect("still serving");
    assert_eq!(served.chain[0], expected.chain[0], "{why}");
    served.response
}

/// A server on a database in a 2 MiB tmpfs, its first certificate from pebble stored,
/// and the disk then filled to the last byte. Dropped in field order: the server first.
struct FullDisk {
    server: crate::support::Server,
    pebble: Pebble,
    port: u16,
    first: Served,
    filler: std::path::PathBuf,
    /// Unmounted when dropped, after the server.
    _mnt: Tmpfs,
    o: Oauthd,
}

/// `None` where no tmpfs can be mounted (said why; a failure under `CI=true`).
fn full_disk_after_the_first_certificate() -> Option<FullDisk> {
    let (mnt, o) = Tmpfs::with_database("2m")?;
    let port = free_port();
    let pebble = Pebble::start(o.dir.path(), free_port(), port, Some(VALIDITY_SECS));
    let server = serve_on(&o, port, &pebble.flags());
    let first = wait_for_certificate(port, &server, &pebble, is_pebbles);
    wait_for_stored(&o, "the first certificate is stored", |(not_after, _)| {
        *not_after == Some(first.leaf().1)
    });
    // Once the writer has been idle for a second it truncates the WAL, so the next write
    // needs new space; then the disk is filled.
    std::thread::sleep(Duration::from_millis(1500));
    let filler = mnt.fill();
    Some(FullDisk {
        server,
        pebble,
        port,
        first,
        filler,
        _mnt: mnt,
        o,
    })
}

/// A read-only filesystem is not tested here: the kernel refuses to remount a tmpfs
/// read-only while the server holds its files open for writing (EBUSY), and a file mode
/// does not stop writes through descriptors already open. A refused write is the same
/// error path either way.
#[test]
fn a_renewal_the_full_disk_cannot_store_is_served_and_stored_once_there_is_room() {
    let Some(setup) = full_disk_after_the_first_certificate() else {
        return;
    };
    let (server, pebble, port) = (setup.server, setup.pebble, setup.port);
    let (first, o) = (&setup.first, &setup.o);

    // The renewal is issued but cannot be stored.
    let logs = wait_for_log(&server, "cannot store the issued certificate");
    let line = logs
        .lines()
        .find(|l| l.contains("cannot store the issued certificate"))
        .expect("line");
    assert!(
        line.contains("disk is full"),
        "the storage error says why: {line}"
    );
    assert!(!logs.contains("PRIVATE KEY"), "no key in the log");
    // It is served at once (it is valid and later than the stored one), and the CA is not
    // asked again while the save is retried.
    let renewed = wait_for_certificate(port, &server, &pebble, |s| {
        is_pebbles(s) && s.chain[0] != first.chain[0]
    });
    assert!(renewed.leaf().1 > first.leaf().1, "the renewed certificate");
    let health = assert_not_asked_again(&server, port, "the unsaved renewal is served", &renewed);
    assert!(health.starts_with("HTTP/1.1 503"), "{health}");
    assert!(health.contains("disk is full"), "{health}");
    // The stored certificate is still the first, whole.
    assert_eq!(stored(o).0, Some(first.leaf().1));

    // Room again: the renewed certificate is stored, the error cleared.
    std::fs::remove_file(&setup.filler).expect("free the disk");
    wait_for_log(
        &server,
        "ACME: the certificate issued earlier is now stored",
    );
    wait_for_stored(
        o,
        "the renewed certificate is stored",
        |(not_after, error)| not_after.is_some_and(|t| t >= renewed.leaf().1) && error.is_none(),
    );

    // A restart with the CA gone serves what is stored: chain and key were written
    // together (a pair that does not match is refused at start).
    let (kept, _) = stored(o);
    drop(server);
    drop(pebble);
    let server = serve_with_the_ca_gone(o, port);
    let again = https_healthz(port).expect("the stored certificate is served at start");
    assert_eq!(Some(again.leaf().1), kept, "{}", server.logs());
}

/// The CA is down when the renewal is due and the full disk cannot record the failure:
/// the backoff (30 s after a first failure) is kept in memory, so the CA is asked once,
/// not in a loop, and the stored certificate stays served.
#[test]
fn a_failed_renewal_the_full_disk_cannot_record_still_backs_off() {
    let Some(setup) = full_disk_after_the_first_certificate() else {
        return;
    };
    let (server, port) = (setup.server, setup.port);
    drop(setup.pebble);
    let logs = wait_for_log(&server, "ACME: could not record the failed attempt");
    assert!(logs.contains("ACME: certificate not issued"), "{logs}");
    assert_not_asked_again(&server, port, "the failed renewal backs off", &setup.first);
}
