//! `oauthd migrate --to postgres://…`: an SQLite database built through the CLI is copied
//! whole into an empty PostgreSQL database and read back there; a database that is not
//! empty (or not oauthd's) is refused unchanged; without the `postgres` build, or with
//! another URL, `--to` is a usage error.

use crate::support::{assert_usage_error, expect_exit, Oauthd};

#[cfg(feature = "postgres")]
mod postgres {
    use crate::pg_support;
    use crate::support::{expect_output_exit, seed_grant, solid_png, Oauthd};

    /// A database with a row in the main tables: users, a confidential client with two
    /// redirect URIs, a brand with a logo, an organization with a member, a grant with
    /// an access and a refresh token, a signing key, and the audit trail of all that.
    fn populated() -> Oauthd {
        let o = Oauthd::on_sqlite();
        o.add_user("ann@example.org", "correct horse");
        o.add_user("Bob@Example.org", "battery staple");
        o.add_client(
            "app",
            &["https://app.example/cb", "https://app.example/cb2"],
        );
        let logo = o.dir.path().join("logo.png");
        std::fs::write(&logo, solid_png(4, 4, [1, 2, 3])).expect("logo");
        o.json(&[
            "brand",
            "add",
            "login.example",
            "--name",
            "Example",
            "--logo",
            logo.to_str().expect("utf-8"),
        ]);
        o.json(&["org", "add", "Acme"]);
        o.json(&[
            "org",
            "member",
            "add",
            "Acme",
            "ann@example.org",
            "--role",
            "admin",
        ]);
        seed_grant(&o, "ann@example.org", "app");
        o.json(&["key", "rotate", "--alg", "ES256", "--signing-delay", "0"]);
        o
    }

    fn sqlite_count(o: &Oauthd, table: &str) -> i64 {
        let conn = rusqlite::Connection::open(&o.db).expect("open");
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .expect("count")
    }

    fn database_name(url: &str) -> &str {
        url.rsplit('/').next().expect("database name")
    }

    #[test]
    fn a_sqlite_database_is_copied_whole_and_every_count_checked() {
        let o = populated();
        let cluster = pg_support::shared();
        let url = cluster.new_database();
        let db = database_name(&url);

        let report = o.json(&["migrate", "--to", &url]);
        assert_eq!(report["to"], url.as_str());
        let tables = report["tables"].as_array().expect("tables");
        assert!(tables.len() >= 20, "{report}");
        let mut total = 0;
        for table in tables {
            let name = table["table"].as_str().expect("name");
            let rows = table["rows"].as_i64().expect("rows");
            assert_eq!(rows, sqlite_count(&o, name), "{name} in the report");
            assert_eq!(
                cluster.sql(db, &format!("SELECT count(*) FROM {name}")),
                rows.to_string(),
                "{name} on PostgreSQL"
            );
            total += rows;
        }
        assert_eq!(report["rows"], total);
        for (table, rows) in [
            ("users", 2),
            ("clients", 1),
            ("client_redirect_uris", 2),
            ("brands", 1),
            ("memberships", 1),
            ("grants", 1),
            ("access_tokens", 1),
            ("refresh_tokens", 1),
            ("signing_keys", 1),
        ] {
            assert_eq!(sqlite_count(&o, table), rows, "{table}");
        }

        // Read back: the values themselves, bytes included.
        assert_eq!(
            cluster.sql(
                db,
                "SELECT string_agg(email, ' ' ORDER BY email_key) FROM users"
            ),
            "ann@example.org Bob@Example.org"
        );
        let conn = rusqlite::Connection::open(&o.db).expect("open");
        let logo: Vec<u8> = conn
            .query_row("SELECT logo FROM brands", [], |r| r.get(0))
            .expect("logo");
        let hex: String = logo.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            cluster.sql(
                db,
                "SELECT encode(logo, 'hex') FROM brands WHERE domain = 'LOGIN.example'"
            ),
            hex
        );
        assert_eq!(
            cluster.sql(
                db,
                "SELECT string_agg(uri, ' ' ORDER BY position) FROM client_redirect_uris"
            ),
            "https://app.example/cb https://app.example/cb2"
        );
        let secret: Vec<u8> = conn
            .query_row("SELECT secret_hash FROM clients", [], |r| r.get(0))
            .expect("secret digest");
        assert_eq!(secret.len(), 32);
        assert_eq!(
            cluster.sql(
                db,
                "SELECT length(secret_hash) FROM clients WHERE id = 'app'"
            ),
            "32"
        );
        // The sequences are past the copied ids: the next grant and audit row get new ones.
        let max_grant: i64 = conn
            .query_row("SELECT max(id) FROM grants", [], |r| r.get(0))
            .expect("grant id");
        assert_eq!(
            cluster.sql(db, "SELECT nextval(pg_get_serial_sequence('grants', 'id'))"),
            (max_grant + 1).to_string()
        );
        let max_audit: i64 = conn
            .query_row("SELECT max(id) FROM audit_log", [], |r| r.get(0))
            .expect("audit id");
        assert_eq!(
            cluster.sql(
                db,
                "INSERT INTO audit_log (at, event) VALUES (0, 'x') RETURNING id"
            ),
            (max_audit + 1).to_string()
        );

        let text = o.ok(&["migrate", "--to", &cluster.new_database()]);
        assert!(
            text.contains("every count checked") && text.contains("users") && text.contains("2"),
            "{text}"
        );
    }

    #[test]
    fn a_target_that_is_not_empty_is_refused_unchanged() {
        let o = populated();
        let cluster = pg_support::shared();
        let url = cluster.new_database();
        let db = database_name(&url);
        o.json(&["migrate", "--to", &url]);
        let before = cluster.sql(db, "SELECT count(*) FROM audit_log");

        let other = Oauthd::on_sqlite();
        other.add_user("carol@example.org", "pw pw pw pw");
        let out = other.cli(&["migrate", "--to", &url]);
        let stderr = expect_output_exit(&out, &["migrate"], 1);
        assert!(
            stderr.contains("not empty") && stderr.contains("changed nothing"),
            "{stderr}"
        );
        assert_eq!(cluster.sql(db, "SELECT count(*) FROM audit_log"), before);
        assert_eq!(
            cluster.sql(
                db,
                "SELECT count(*) FROM users WHERE email_key = 'carol@example.org'"
            ),
            "0"
        );

        let foreign = cluster.new_database();
        let foreign_db = database_name(&foreign);
        cluster.sql(foreign_db, "CREATE TABLE invoices (id BIGINT)");
        let out = other.cli(&["migrate", "--to", &foreign]);
        let stderr = expect_output_exit(&out, &["migrate"], 1);
        assert!(
            stderr.contains("neither empty nor an oauthd one"),
            "{stderr}"
        );
        assert_eq!(
            cluster.sql(
                foreign_db,
                "SELECT string_agg(relname, ' ') FROM pg_class WHERE relnamespace = 'public'::regnamespace"
            ),
            "invoices"
        );
    }

    #[test]
    fn a_password_in_the_url_is_never_printed() {
        let o = populated();
        let cluster = pg_support::shared();
        let url = cluster.new_database();
        let with_password = url.replacen("oauthd@", "oauthd:s3cret-pw@", 1);
        let text = o.ok(&["migrate", "--to", &with_password]);
        assert!(
            !text.contains("s3cret-pw") && text.contains("***"),
            "{text}"
        );
    }
}

#[test]
fn to_takes_only_a_postgres_url_and_only_in_a_postgres_build() {
    let o = Oauthd::new();
    o.add_user("ann@example.org", "correct horse");
    let stderr = expect_exit(&o, &["migrate", "--to", "/tmp/other.db"], 2);
    let expected = if cfg!(feature = "postgres") {
        "expected a postgres://"
    } else {
        "built without PostgreSQL"
    };
    assert_usage_error(&stderr, expected);
    if !cfg!(feature = "postgres") {
        let stderr = expect_exit(&o, &["migrate", "--to", "postgres://u@127.0.0.1:1/db"], 2);
        assert_usage_error(&stderr, "built without PostgreSQL");
    }
}

/// Accounts kept apart from before Unicode folding cannot be held by PostgreSQL, whose
/// folded email is unique: the copy is refused, saying how to resolve them, before the
/// target is touched.
#[cfg(feature = "postgres")]
#[test]
fn emails_that_collide_once_folded_are_resolved_first() {
    let o = Oauthd::on_sqlite();
    crate::email_identity::version_1_database(&o, &["Ünï@x.io", "ünï@x.io"], "pw pw pw");
    o.json(&["org", "add", "Acme"]);
    let cluster = crate::pg_support::shared();
    let url = cluster.new_database();
    let stderr = expect_exit(&o, &["migrate", "--to", &url], 1);
    assert!(
        stderr.contains("2 accounts share an email") && stderr.contains("oauthd check"),
        "{stderr}"
    );
    let db = url.rsplit('/').next().expect("database name");
    assert_eq!(
        cluster.sql(
            db,
            "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace"
        ),
        "0",
        "the target is untouched"
    );
}
