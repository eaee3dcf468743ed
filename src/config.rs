//! Validated settings for `serve`, built once from the parsed flags and environment.
//! Nothing after this point sees clap types or re-checks a value.

use std::net::SocketAddr;

use crate::cli::ServeArgs;
use crate::store::Location;

/// Everything the server needs to know, already checked.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub db: Location,
    pub listen: SocketAddr,
    /// Public base URL without a trailing slash, e.g. `https://auth.example.com`.
    pub issuer: String,
    pub code_ttl_secs: i64,
    pub access_ttl_secs: i64,
    /// `None`: refresh tokens never expire.
    pub refresh_ttl_secs: Option<i64>,
    pub refresh_grace_secs: i64,
    pub pbkdf2_iterations: u32,
    pub allow_network_fs: bool,
    pub trust_forwarded_for: bool,
    pub max_connections_per_ip: usize,
    pub max_connections: usize,
    /// How long a shutdown waits for requests in flight.
    pub shutdown_timeout: std::time::Duration,
    /// Device grant: device and user code lifetime, and the polling interval.
    pub device_code_ttl_secs: i64,
    pub device_interval_secs: i64,
    /// Browser session lifetime; 0: no sessions.
    pub session_ttl_secs: i64,
    /// A session unused this long ends.
    pub session_idle_secs: i64,
    /// Where `/metrics` is served; `None`: not served.
    pub metrics_listen: Option<SocketAddr>,
    /// Audit rows older than this are deleted.
    pub audit_retention: std::time::Duration,
    /// `Some`: serve HTTPS with these certificate files.
    pub tls_files: Option<crate::tls::CertFiles>,
    /// `Some`: serve HTTPS with certificates by ACME.
    pub acme: Option<crate::tls::acme::AcmeConfig>,
    /// The plain-HTTP listener (ACME HTTP-01 and redirects to https).
    pub http_listen: Option<SocketAddr>,
}

/// A combination of settings that clap cannot check one value at a time. (Each single
/// value, such as `--issuer`, is checked by its clap value parser: a usage error.)
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {}

impl ServeConfig {
    /// The issuer was checked by its clap value parser already.
    pub fn new(
        db: Location,
        pbkdf2_iterations: u32,
        args: &ServeArgs,
    ) -> Result<Self, ConfigError> {
        let tls_files = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some(crate::tls::CertFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => None,
        };
        let acme = (!args.acme_domain.is_empty()).then(|| crate::tls::acme::AcmeConfig {
            domains: args.acme_domain.clone(),
            email: args.acme_email.clone(),
            directory: args.acme_directory.clone(),
            ca_root: args.acme_ca_root.clone(),
            http_challenge: args.http_listen.is_some(),
        });
        let issuer = match (&args.issuer, &acme) {
            (Some(issuer), _) => issuer.clone(),
            (None, Some(acme)) => format!("https://{}", acme.domains[0]),
            (None, None) => default_issuer(args.listen, tls_files.is_some()),
        };
        Ok(ServeConfig {
            db,
            listen: args.listen,
            issuer,
            code_ttl_secs: i64::from(args.code_ttl),
            access_ttl_secs: i64::from(args.access_ttl),
            refresh_ttl_secs: (args.refresh_ttl > 0).then_some(i64::from(args.refresh_ttl)),
            refresh_grace_secs: i64::from(args.refresh_grace),
            pbkdf2_iterations,
            allow_network_fs: args.allow_network_fs,
            trust_forwarded_for: args.trust_forwarded_for,
            max_connections_per_ip: args.max_connections_per_ip as usize,
            max_connections: args.max_connections as usize,
            shutdown_timeout: std::time::Duration::from_secs(u64::from(args.shutdown_timeout)),
            device_code_ttl_secs: i64::from(args.device_code_ttl),
            device_interval_secs: i64::from(args.device_interval),
            session_ttl_secs: i64::from(args.session_ttl),
            session_idle_secs: i64::from(args.session_idle),
            metrics_listen: args.metrics_listen,
            audit_retention: args.audit_retention,
            tls_files,
            acme,
            http_listen: args.http_listen,
        })
    }

    /// When `--listen` used port 0, the issuer default must name the port actually bound.
    /// An issuer still equal to the default for the configured address was not given.
    pub fn with_bound_address(mut self, bound: SocketAddr) -> Self {
        let https = self.serves_https();
        if self.issuer == default_issuer(self.listen, https) {
            self.issuer = default_issuer(bound, https);
        }
        self.listen = bound;
        self
    }
}

impl ServeConfig {
    /// Whether the listener speaks TLS.
    pub fn serves_https(&self) -> bool {
        self.tls_files.is_some() || self.acme.is_some()
    }
}

fn default_issuer(listen: SocketAddr, https: bool) -> String {
    let scheme = if https { "https" } else { "http" };
    format!("{scheme}://{listen}")
}
