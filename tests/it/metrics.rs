//! `serve --metrics-listen`: a real Prometheus (Debian's `prometheus`) scrapes oauthd
//! every second while the test signs in, exchanges codes, rotates and reuses refresh
//! tokens and trips a lockout; the values are then read back through Prometheus's HTTP
//! query API.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::flow_support::*;
use crate::support::{agent, reply, Oauthd, Server};

const PROMETHEUS: &str = "/usr/bin/prometheus";
const DEADLINE: Duration = Duration::from_secs(60);

/// A running Prometheus, killed on drop.
struct Prometheus {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Starts Prometheus scraping `target` (host:port) every second.
    fn scraping(target: &str) -> Prometheus {
        assert!(
            Path::new(PROMETHEUS).exists(),
            "{PROMETHEUS} is missing: install Debian's `prometheus` package (see .ci/run)"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
                 scrape_configs:\n  - job_name: oauthd\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .expect("write prometheus.yml");
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log");
        let child = Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        Prometheus {
            child,
            port,
            _dir: dir,
        }
    }

    /// The value of the instant query `query` (first series), if it has one yet.
    fn value(&self, query: &str) -> Option<f64> {
        let url = format!("http://127.0.0.1:{}/api/v1/query", self.port);
        let r = reply(agent().get(&url).query("query", query).call());
        if r.status != 200 {
            return None;
        }
        let v = r.json();
        v["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|s| s.parse().ok())
    }

    /// Waits until `query` satisfies `ok`, failing with the last value after the deadline.
    fn wait_for(&self, query: &str, ok: impl Fn(f64) -> bool) -> f64 {
        let started = Instant::now();
        loop {
            let value = self.value(query);
            if let Some(v) = value.filter(|v| ok(*v)) {
                return v;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "Prometheus query {query:?}: last value {value:?}; log:\n{}",
                std::fs::read_to_string(self._dir.path().join("prometheus.log"))
                    .unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// The metrics address the server logged (`metrics listening address=…`).
fn metrics_address(server: &Server) -> String {
    let started = Instant::now();
    loop {
        let logs = server.logs();
        let found = logs
            .lines()
            .filter(|l| l.contains("metrics listening"))
            .find_map(|l| l.split("address=").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_owned);
        if let Some(address) = found {
            return address;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "no metrics address logged:\n{logs}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn metrics_a_real_prometheus_scrapes_and_reads_back_logins_tokens_and_storage() {
    let s = seeded(&["--metrics-listen", "127.0.0.1:0"]);
    s.o.add_public_client("pub", &[PUBLIC_REDIRECT], &[]);
    let address = metrics_address(&s.server);
    let prometheus = Prometheus::scraping(&address);

    // A confidential code flow, and a public one with a rotation and then a reuse.
    let code = login_code(&s.server, json!({}));
    tokens(&exchange(&s, &code));
    // Presenting a rotated-out token whose successor was used is reuse.
    let (_, first) = public_exchange(&s, None);
    let (_, second) = tokens(&public_refresh(&s, &first, None));
    tokens(&public_refresh(&s, &second, None));
    assert_oauth_error(&public_refresh(&s, &first, None), 400, "invalid_grant");
    // A machine's client-credentials token.
    let machine = s.o.json(&[
        "client",
        "add",
        "--name",
        "M",
        "--id",
        "machine",
        "--grant",
        "client_credentials",
    ]);
    let machine_secret = machine["client_secret"].as_str().expect("secret");
    let form = [("grant_type", "client_credentials")];
    let auth = basic("machine", machine_secret);
    let r = post_form(&s.server, "/oauth/token", &form, Some(&auth));
    assert_eq!(r.status, 200, "{}", r.body);
    // Five wrong passwords at once lock the account out; the sixth try is throttled.
    let wrong = json!({"email": "victim@example.com", "password": "guess"});
    std::thread::scope(|scope| {
        for _ in 0..5 {
            scope.spawn(|| assert_eq!(login(&s.server, &login_body(wrong.clone())).status, 401));
        }
    });
    assert_eq!(login(&s.server, &login_body(wrong)).status, 429);
    assert_eq!(
        reply(agent().get(&s.server.url("/no/such/path?token=x")).call()).status,
        404
    );

    let exact = |query: &str, expected: f64| {
        prometheus.wait_for(query, |v| v == expected);
    };
    exact(r#"oauthd_logins_total{outcome="success"}"#, 2.0);
    exact(r#"oauthd_logins_total{outcome="wrong_credentials"}"#, 5.0);
    exact(r#"oauthd_logins_total{outcome="throttled"}"#, 1.0);
    exact("oauthd_lockouts_total", 1.0);
    exact(
        r#"oauthd_tokens_issued_total{grant="authorization_code"}"#,
        2.0,
    );
    exact(r#"oauthd_tokens_issued_total{grant="refresh_token"}"#, 2.0);
    exact(
        r#"oauthd_tokens_issued_total{grant="client_credentials"}"#,
        1.0,
    );
    exact("oauthd_refresh_rotations_total", 2.0);
    exact("oauthd_refresh_reuse_detections_total", 1.0);
    exact(
        r#"oauthd_http_requests_total{route="/api/oauth_login",status="200"}"#,
        2.0,
    );
    exact(
        r#"oauthd_http_requests_total{route="/oauth/token",status="400"}"#,
        1.0,
    );
    // Unknown paths share one series; the raw path never becomes a label.
    exact(
        r#"oauthd_http_requests_total{route="unmatched",status="404"}"#,
        1.0,
    );
    exact(
        r#"absent(oauthd_http_requests_total{route=~".*no/such.*"})"#,
        1.0,
    );
    // Five token requests answered (an exchange, three refreshes, client credentials).
    exact(
        r#"sum(oauthd_http_request_duration_seconds_count{route="/oauth/token"})"#,
        5.0,
    );
    exact(r#"oauthd_build_info{version="0.1.0"}"#, 1.0);
    exact("oauthd_hash_pool_queue_depth", 0.0);
    prometheus.wait_for("oauthd_hash_pool_capacity", |v| v >= 32.0);
    exact("oauthd_hash_pool_busy_refusals_total", 0.0);
    // Every token exchange and refresh is one committed write at least.
    prometheus.wait_for("oauthd_writer_batch_jobs_count", |v| v >= 3.0);
    prometheus.wait_for("oauthd_writer_commit_duration_seconds_count", |v| v >= 3.0);
    assert_storage_metrics(&s.o, &prometheus);
    // No TLS: no certificate, so no expiry series.
    exact(
        "absent(oauthd_tls_certificate_expiry_timestamp_seconds)",
        1.0,
    );
}

/// The storage gauges: the SQLite file and its WAL, or the PostgreSQL database's size
/// (no WAL gauge there: PostgreSQL's WAL is the whole cluster's); and what they sum to
/// grows when a few megabytes of rows are written.
fn assert_storage_metrics(o: &Oauthd, prometheus: &Prometheus) {
    prometheus.wait_for("oauthd_database_size_bytes", |v| v >= 4096.0);
    if crate::support::on_postgres() {
        prometheus.wait_for("absent(oauthd_wal_size_bytes)", |v| v == 1.0);
    } else {
        prometheus.wait_for("oauthd_wal_size_bytes", |v| v >= 0.0);
    }
    let stored = "sum(oauthd_database_size_bytes) + sum(oauthd_wal_size_bytes or vector(0))";
    let before = prometheus.wait_for(stored, |v| v > 0.0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    o.sql(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
         INSERT INTO audit_log (at, event, detail) SELECT {now}, 'filler', '{}' FROM n",
        "x".repeat(500)
    ));
    prometheus.wait_for(stored, |v| v > before + 1_000_000.0);
}

#[test]
fn metrics_are_off_by_default_and_the_listener_serves_only_get_metrics() {
    let s = seeded(&[]);
    let started = Instant::now();
    while !s.server.logs().contains("oauthd started") {
        assert!(started.elapsed() < DEADLINE, "no start logged");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !s.server.logs().contains("metrics listening"),
        "no metrics listener unless asked"
    );
    let s = seeded(&["--metrics-listen", "127.0.0.1:0"]);
    let address = metrics_address(&s.server);
    let r = reply(agent().get(&format!("http://{address}/metrics")).call());
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap_or_default()
        .starts_with("application/openmetrics-text"));
    assert!(
        r.body.contains("# TYPE oauthd_refresh_rotations counter"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains(r#"oauthd_build_info{version="#),
        "{}",
        r.body
    );
    assert_eq!(r.body.lines().last(), Some("# EOF"), "{}", r.body);
    let post = reply(agent().post(&format!("http://{address}/metrics")).send(""));
    assert_eq!(post.status, 405);
    let other = reply(agent().get(&format!("http://{address}/healthz")).call());
    assert_eq!(other.status, 404);
}

#[test]
fn metrics_export_the_served_certificates_expiry_once_tls_is_on() {
    let o = Oauthd::new();
    let ca = crate::tls_support::TestCa::new();
    let leaf = ca.leaf(o.dir.path(), "server");
    let (_, cert) = x509_parser::parse_x509_certificate(&leaf.der).expect("leaf");
    let not_after = cert.validity().not_after.timestamp();
    let server = o.serve(&[
        "--metrics-listen",
        "127.0.0.1:0",
        "--tls-cert",
        leaf.cert.to_str().expect("utf-8"),
        "--tls-key",
        leaf.key.to_str().expect("utf-8"),
    ]);
    let address = metrics_address(&server);
    let r = reply(agent().get(&format!("http://{address}/metrics")).call());
    assert_eq!(r.status, 200);
    let line = format!("oauthd_tls_certificate_expiry_timestamp_seconds {not_after}");
    assert!(r.body.lines().any(|l| l == line), "{line} in:\n{}", r.body);
}
