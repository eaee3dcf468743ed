//! The Prometheus metrics: one registry, built at start and shared through `App`.
//!
//! Recording is a relaxed atomic add (counters, [`Histogram`]); a labelled series is
//! looked up under a read lock that is only ever written when a series is first seen.
//! Label values come from fixed sets (route patterns, status codes, outcome names), never
//! from request data, so the number of series is bounded and no secret can appear.
//! Values that already live elsewhere (hashing-pool queue, lockouts, file sizes) are read
//! at scrape time into [`Sample`] instead of being recorded twice.

pub mod histogram;
pub mod listener;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

pub use histogram::Histogram;

use crate::oauth::{ExchangeDecision, RefreshDecision};

/// The writer thread's metrics; the store records into them, the registry reads them.
#[derive(Debug, Clone)]
pub struct WriterMetrics {
    /// Jobs per group commit.
    pub batch_jobs: Histogram,
    /// Seconds from BEGIN to the end of COMMIT of one batch.
    pub commit_seconds: Histogram,
}

impl WriterMetrics {
    /// One group commit of `jobs` writes that took `took`.
    pub fn record_batch(&self, jobs: usize, took: Duration) {
        self.batch_jobs.observe(jobs as f64);
        self.commit_seconds.observe(took.as_secs_f64());
    }
}

impl Default for WriterMetrics {
    fn default() -> Self {
        WriterMetrics {
            batch_jobs: Histogram::new(histogram::BATCH_JOBS),
            commit_seconds: Histogram::new(histogram::SECONDS),
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GrantLabel {
    grant: &'static str,
}

/// Values read from their owners at each scrape.
#[derive(Debug, Default, Clone, Copy)]
pub struct Sample {
    /// Password hashes queued or running.
    pub hash_queue_depth: u64,
    pub hash_queue_capacity: u64,
    /// Hashing-pool refusals (`Busy`) since start.
    pub hash_busy_refusals: u64,
    /// Lockouts started since start (per account and per address).
    pub lockouts: u64,
    pub database_bytes: u64,
    /// `None`: the store has no WAL file of its own (PostgreSQL); the metric is left out.
    pub wal_bytes: Option<u64>,
}

/// All of oauthd's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabel, Histogram, fn() -> Histogram>,
    logins: Family<OutcomeLabel, Counter>,
    tokens: Family<GrantLabel, Counter>,
    rotations: Counter,
    reuse_detections: Counter,
    code_replays: Counter,
    sampled: std::sync::Arc<Sampled>,
}

impl Metrics {
    /// The registry, with the writer's histograms (owned by the store) in it.
    pub fn new(writer: &WriterMetrics) -> Metrics {
        let mut registry = Registry::with_prefix("oauthd");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: Family<RouteLabel, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(|| Histogram::new(histogram::SECONDS));
        let logins = Family::<OutcomeLabel, Counter>::default();
        let tokens = Family::<GrantLabel, Counter>::default();
        let (rotations, reuse_detections, code_replays) =
            (Counter::default(), Counter::default(), Counter::default());
        let sampled = std::sync::Arc::new(Sampled::default());
        registry.register(
            "http_requests",
            "HTTP requests answered, by route pattern and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer a request, by route pattern",
            latency.clone(),
        );
        registry.register("logins", "Sign-in attempts, by outcome", logins.clone());
        registry.register(
            "tokens_issued",
            "Access tokens issued, by grant type",
            tokens.clone(),
        );
        registry.register(
            "refresh_rotations",
            "Refresh tokens rotated out for a successor",
            rotations.clone(),
        );
        registry.register(
            "refresh_reuse_detections",
            "Rotated-out refresh tokens presented again (grant revoked)",
            reuse_detections.clone(),
        );
        registry.register(
            "code_replay_detections",
            "Authorization codes presented again (grant revoked)",
            code_replays.clone(),
        );
        registry.register(
            "writer_batch_jobs",
            "Writes committed together in one group commit",
            writer.batch_jobs.clone(),
        );
        registry.register(
            "writer_commit_duration_seconds",
            "Time to run and commit one batch of writes",
            writer.commit_seconds.clone(),
        );
        registry.register(
            "build",
            "The running build",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        registry.register_collector(Box::new(std::sync::Arc::clone(&sampled)));
        Metrics {
            registry,
            requests,
            latency,
            logins,
            tokens,
            rotations,
            reuse_detections,
            code_replays,
            sampled,
        }
    }

    /// One answered request; `route` is the route table's pattern, never the raw path.
    pub fn request(&self, route: &'static str, status: u16, took: Duration) {
        self.requests
            .get_or_create(&RequestLabels { route, status })
            .inc();
        self.latency
            .get_or_create(&RouteLabel { route })
            .observe(took.as_secs_f64());
    }

    /// One sign-in attempt, by its outcome's fixed name.
    pub fn login(&self, outcome: &'static str) {
        self.logins.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    /// What an authorization-code exchange decided.
    pub fn exchange(&self, decision: &ExchangeDecision) {
        match decision {
            ExchangeDecision::Issue { .. } => self.issued("authorization_code"),
            ExchangeDecision::RevokeReplayed { .. } => {
                self.code_replays.inc();
            }
            ExchangeDecision::Refuse(_) => {}
        }
    }

    /// What a refresh decided.
    pub fn refresh(&self, decision: &RefreshDecision) {
        match decision {
            RefreshDecision::Keep { .. } => self.issued("refresh_token"),
            RefreshDecision::Rotate { .. } | RefreshDecision::RotateAgain { .. } => {
                self.issued("refresh_token");
                self.rotations.inc();
            }
            RefreshDecision::RevokeReused { .. } => {
                self.reuse_detections.inc();
            }
            RefreshDecision::Refuse(_) => {}
        }
    }

    /// An access token issued, by its grant type's name (client credentials and the
    /// device grant report theirs here; codes and refreshes through their decisions).
    pub fn issued(&self, grant: &'static str) {
        self.tokens.get_or_create(&GrantLabel { grant }).inc();
    }

    /// Hook for TLS: the serving certificate's expiry (Unix seconds). Until it is set,
    /// `oauthd_tls_certificate_expiry_timestamp_seconds` is not exported.
    pub fn set_certificate_expiry(&self, unix_secs: i64) {
        self.sampled
            .certificate_expiry
            .store(unix_secs, Ordering::Relaxed);
    }

    /// The OpenMetrics text of every metric, with `sample` as the scrape-time values.
    pub fn render(&self, sample: Sample) -> Result<String, std::fmt::Error> {
        self.sampled.set(sample);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// The scrape-time values, held for the encoder (and the certificate hook's value).
#[derive(Debug, Default)]
struct Sampled {
    hash_queue_depth: AtomicU64,
    hash_queue_capacity: AtomicU64,
    hash_busy_refusals: AtomicU64,
    lockouts: AtomicU64,
    database_bytes: AtomicU64,
    /// [`NO_WAL`]: the store has no WAL of its own (PostgreSQL).
    wal_bytes: AtomicU64,
    /// 0: not set (no TLS).
    certificate_expiry: AtomicI64,
}

impl Sampled {
    fn set(&self, sample: Sample) {
        let store = |to: &AtomicU64, value: u64| to.store(value, Ordering::Relaxed);
        store(&self.hash_queue_depth, sample.hash_queue_depth);
        store(&self.hash_queue_capacity, sample.hash_queue_capacity);
        store(&self.hash_busy_refusals, sample.hash_busy_refusals);
        store(&self.lockouts, sample.lockouts);
        store(&self.database_bytes, sample.database_bytes);
        store(&self.wal_bytes, sample.wal_bytes.unwrap_or(NO_WAL));
    }
}

/// The `wal_bytes` of a store without a WAL file of its own: the metric is left out.
const NO_WAL: u64 = u64::MAX;

/// Encodes one unlabelled metric.
fn one(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric: &impl EncodeMetric,
) -> Result<(), std::fmt::Error> {
    let metric_encoder: MetricEncoder =
        encoder.encode_descriptor(name, help, None, metric.metric_type())?;
    metric.encode(metric_encoder)
}

impl Collector for Sampled {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let read = |from: &AtomicU64| from.load(Ordering::Relaxed);
        let gauge = |from: &AtomicU64| ConstGauge::new(read(from) as i64);
        let counter = |from: &AtomicU64| ConstCounter::new(read(from));
        let e = &mut encoder;
        one(
            e,
            "hash_pool_queue_depth",
            "Password hashes queued or running",
            &gauge(&self.hash_queue_depth),
        )?;
        one(
            e,
            "hash_pool_capacity",
            "Password hashes that may be queued or running at once",
            &gauge(&self.hash_queue_capacity),
        )?;
        one(
            e,
            "hash_pool_busy_refusals",
            "Password work turned away because the hashing pool was full",
            &counter(&self.hash_busy_refusals),
        )?;
        one(
            e,
            "lockouts",
            "Lockouts started (per account or per client address)",
            &counter(&self.lockouts),
        )?;
        one(
            e,
            "database_size_bytes",
            "Size of the database (the SQLite file, or the PostgreSQL database on disk)",
            &gauge(&self.database_bytes),
        )?;
        if read(&self.wal_bytes) != NO_WAL {
            one(
                e,
                "wal_size_bytes",
                "Size of the SQLite database's write-ahead log file",
                &gauge(&self.wal_bytes),
            )?;
        }
        let expiry = self.certificate_expiry.load(Ordering::Relaxed);
        if expiry != 0 {
            one(
                e,
                "tls_certificate_expiry_timestamp_seconds",
                "When the serving certificate expires (Unix time)",
                &ConstGauge::new(expiry),
            )?;
        }
        Ok(())
    }
}
