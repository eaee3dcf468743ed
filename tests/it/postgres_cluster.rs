//! The throwaway PostgreSQL cluster the PostgreSQL store's tests run on: it keeps
//! PostgreSQL's default durability, never runs as root, and leaves nothing behind.

use crate::pg_support::PgCluster;

#[test]
fn a_throwaway_cluster_is_durable_unprivileged_and_removed_on_drop() {
    let cluster = PgCluster::start();
    assert_eq!(cluster.sql("postgres", "SHOW fsync"), "on");
    assert_eq!(cluster.sql("postgres", "SHOW synchronous_commit"), "on");
    let data = cluster.sql("postgres", "SHOW data_directory");
    let owner =
        std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&data).expect("the data folder"));
    assert_ne!(owner, 0, "PostgreSQL's data belongs to root");
    let url = cluster.new_database();
    assert!(url.starts_with("postgres://oauthd@127.0.0.1:"), "{url}");
    let port = cluster.port();
    drop(cluster);
    assert!(
        !std::path::Path::new(&data).exists(),
        "{data} is left behind"
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "PostgreSQL still listens on {port}"
    );
}

#[test]
fn a_postgres_url_is_refused_until_the_store_is_complete() {
    let o = crate::support::Oauthd::new();
    for url in ["postgres://oauthd@127.0.0.1/db", "PostgreSQL://h/db"] {
        let out = std::process::Command::new(crate::support::bin())
            .env("OAUTHD_PBKDF2_ITERATIONS", "1000")
            .args(["--db", url, "user", "list"])
            .current_dir(o.dir.path())
            .output()
            .expect("run oauthd");
        let stderr = crate::support::expect_output_exit(&out, &["--db", url], 2);
        crate::support::assert_usage_error(&stderr, "the PostgreSQL store is not complete yet");
        let served = std::process::Command::new(crate::support::bin())
            .env("OAUTHD_DB", url)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .current_dir(o.dir.path())
            .output()
            .expect("run oauthd serve");
        let stderr = crate::support::expect_output_exit(&served, &["serve"], 2);
        crate::support::assert_usage_error(&stderr, "the PostgreSQL store is not complete yet");
    }
    assert_eq!(
        std::fs::read_dir(o.dir.path()).expect("list").count(),
        0,
        "nothing was created"
    );
}
