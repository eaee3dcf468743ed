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

/// An `Oauthd` whose `--db` is a new database in the shared cluster, its URL carrying a
/// password (trust authentication ignores it) that must never be shown.
#[cfg(feature = "postgres")]
fn on_postgres() -> crate::support::Oauthd {
    let mut o = crate::support::Oauthd::on_postgres_cluster(crate::pg_support::shared());
    o.pg =
        o.pg.map(|url| url.replacen("postgres://oauthd@", "postgres://oauthd:pw-SECRET@", 1));
    o
}

#[cfg(feature = "postgres")]
#[test]
fn serve_and_the_cli_run_on_a_postgres_url() {
    use crate::flow_support::get_with_host;
    let o = on_postgres();
    let logo = o.dir.path().join("logo.png");
    std::fs::write(&logo, crate::support::solid_png(2, 2, [10, 125, 79])).expect("logo");
    let logo = logo.to_str().expect("utf-8 path");
    o.json(&[
        "brand",
        "add",
        "login.acme.test",
        "--name",
        "Acme",
        "--logo",
        logo,
    ]);
    let brands = o.json(&["brand", "list"]);
    assert_eq!(brands[0]["domain"], "login.acme.test", "{brands}");
    let server = o.serve(&[]);
    let health = get_with_host(&server, "localhost", "/healthz");
    assert_eq!(health.status, 200, "{}", health.body);
    let branded = get_with_host(&server, "login.acme.test", "/brand/logo");
    assert_eq!(branded.status, 200, "{}", branded.body);
    assert_eq!(branded.header("content-type").as_deref(), Some("image/png"));
    let keys = get_with_host(&server, "localhost", "/oauth/jwks");
    assert_eq!(keys.status, 200, "{}", keys.body);
    assert!(keys.body.contains("\"kid\""), "{}", keys.body);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let logs = loop {
        let logs = server.logs();
        if logs.contains("oauthd started") || std::time::Instant::now() > deadline {
            break logs;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(logs.contains("postgres://oauthd:***@"), "{logs}");
    assert!(!logs.contains("pw-SECRET"), "{logs}");
    let left: Vec<_> = std::fs::read_dir(o.dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(left, ["logo.png"], "no SQLite file was created");
}

/// Backing up and restoring are PostgreSQL's own tools' work: each says which, and
/// neither touches the database.
#[cfg(feature = "postgres")]
#[test]
fn backup_and_restore_on_a_postgres_url_name_the_postgresql_tools() {
    let o = on_postgres();
    let dest = o.dir.path().join("copy.db");
    let dest = dest.to_str().expect("utf-8 path");
    for (args, tool) in [
        (["backup", dest], "use pg_dump: the PostgreSQL store is backed up with pg_dump, e.g. `pg_dump -Fc URL > oauthd.dump`"),
        (["restore", dest], "use pg_restore"),
    ] {
        let stderr = crate::support::expect_exit(&o, &args, 1);
        crate::support::assert_one_line_error(&stderr, tool);
        assert!(!stderr.contains("pw-SECRET"), "{stderr}");
    }
    assert_eq!(
        std::fs::read_dir(o.dir.path()).expect("list").count(),
        0,
        "nothing was written"
    );
}

/// Commands that only read refuse a database at an older schema version, changing
/// nothing, as on SQLite; a command that writes upgrades it. The older database is the
/// first PostgreSQL version (11): the baseline alone.
#[cfg(feature = "postgres")]
#[test]
fn reading_commands_refuse_an_older_postgres_schema_and_a_writing_one_upgrades_it() {
    let cluster = crate::pg_support::shared();
    let o = crate::support::Oauthd::on_postgres_cluster(cluster);
    let name = database_name(&o);
    let baseline = include_str!("../../src/store/pg/schema.sql");
    cluster.sql(
        name,
        &format!(
            "{baseline}
             CREATE TABLE oauthd_schema (version BIGINT NOT NULL);
             INSERT INTO oauthd_schema (version) VALUES (11);"
        ),
    );
    let version = || cluster.sql(name, "SELECT version FROM oauthd_schema");
    let reading: [&[&str]; 3] = [&["check"], &["user", "list"], &["key", "list"]];
    refused_until_a_command_writes(&o, &reading, 11, version);
    assert_ne!(version(), "11", "a writing command upgrades it");
}

/// Commands that only read refuse an empty database as they refuse an empty SQLite file
/// (schema version 0, exit 1), and leave it empty: no table is created.
#[cfg(feature = "postgres")]
#[test]
fn reading_commands_refuse_an_empty_postgres_database_and_create_nothing() {
    let cluster = crate::pg_support::shared();
    let o = crate::support::Oauthd::on_postgres_cluster(cluster);
    let tables = || {
        cluster.sql(
            database_name(&o),
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
        )
    };
    assert_eq!(tables(), "0", "a fresh database");
    let reading: [&[&str]; 5] = [
        &["check"],
        &["user", "list"],
        &["client", "show", "c"],
        &["audit"],
        &["key", "list"],
    ];
    refused_until_a_command_writes(&o, &reading, 0, tables);
    assert_ne!(tables(), "0", "a writing command creates the schema");
}

#[cfg(feature = "postgres")]
fn database_name(o: &crate::support::Oauthd) -> &str {
    let url = o.pg.as_deref().expect("url");
    url.rsplit('/').next().expect("database name")
}

/// Each of the `reading` commands exits 1 naming schema version `found` as older, and
/// leaves `state` (what the database holds) as it was; then a writing command (adding a
/// user) makes the database usable, and a reading one lists the user.
#[cfg(feature = "postgres")]
fn refused_until_a_command_writes(
    o: &crate::support::Oauthd,
    reading: &[&[&str]],
    found: i64,
    state: impl Fn() -> String,
) {
    let before = state();
    for args in reading {
        let stderr = crate::support::expect_exit(o, args, 1);
        crate::support::assert_one_line_error(
            &stderr,
            &format!("schema version {found}, older than this binary's"),
        );
        assert!(stderr.contains("a command that writes"), "{stderr}");
        assert_eq!(state(), before, "{args:?} changed the database");
    }
    o.add_user("a@example.com", "pw");
    let users = o.json(&["user", "list"]);
    assert_eq!(users.as_array().map(Vec::len), Some(1), "{users}");
}

#[cfg(not(feature = "postgres"))]
#[test]
fn a_postgres_url_is_a_usage_error_without_the_postgres_feature() {
    let o = crate::support::Oauthd::new();
    for url in ["postgres://oauthd@127.0.0.1/db", "PostgreSQL://h/db"] {
        let out = std::process::Command::new(crate::support::bin())
            .env("OAUTHD_PBKDF2_ITERATIONS", "1000")
            .args(["--db", url, "user", "list"])
            .current_dir(o.dir.path())
            .output()
            .expect("run oauthd");
        let stderr = crate::support::expect_output_exit(&out, &["--db", url], 2);
        crate::support::assert_usage_error(&stderr, "this build has no PostgreSQL support");
        let served = std::process::Command::new(crate::support::bin())
            .env("OAUTHD_DB", url)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .current_dir(o.dir.path())
            .output()
            .expect("run oauthd serve");
        let stderr = crate::support::expect_output_exit(&served, &["serve"], 2);
        crate::support::assert_usage_error(&stderr, "this build has no PostgreSQL support");
    }
    assert_eq!(
        std::fs::read_dir(o.dir.path()).expect("list").count(),
        0,
        "nothing was created"
    );
}
