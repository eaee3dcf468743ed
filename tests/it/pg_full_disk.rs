//! PostgreSQL's disk filling up under a running server: the database's tablespace lives
//! on a small tmpfs (the WAL stays on the cluster's own disk, so PostgreSQL raises
//! "could not extend file" errors instead of stopping), answered like a full disk under
//! an SQLite file.

#![cfg(feature = "postgres")]

use crate::db_faults::{full_disk_fails_writes_then_recovers, Tmpfs};
use crate::flow_support::{CLIENT_ID, EMAIL, PASSWORD, REDIRECT};
use crate::pg_support::{give_to_server, PgCluster};
use crate::support::Oauthd;

#[test]
fn a_full_postgres_disk_answers_503_with_retry_after_and_recovers() {
    let cluster = PgCluster::start();
    let o = Oauthd::on_postgres_cluster(&cluster);
    // The server (user postgres when root) reaches the mount through the test's folder.
    std::fs::set_permissions(
        o.dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let Some(mnt) = Tmpfs::mount(&o, "4m") else {
        return;
    };
    give_to_server(&mnt.dir);
    let location = mnt.dir.join("pg");
    std::fs::create_dir(&location).expect("tablespace folder");
    give_to_server(&location);
    cluster.sql(
        "postgres",
        &format!("CREATE TABLESPACE small LOCATION '{}'", location.display()),
    );
    cluster.sql("postgres", "CREATE DATABASE small TABLESPACE small");
    let o = Oauthd {
        pg: Some(cluster.url("small")),
        ..o
    };
    o.add_user(EMAIL, PASSWORD);
    o.add_client(CLIENT_ID, &[REDIRECT]);
    let server = o.serve(&[]);
    full_disk_fails_writes_then_recovers(&server, &mnt);
    drop(server);
    drop(cluster);
    drop(mnt);
}
