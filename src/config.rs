//! Validated settings for `serve`, built once from the parsed flags and environment.
//! Nothing after this point sees clap types or re-checks a value.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::cli::ServeArgs;

/// Everything the server needs to know, already checked.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub db: PathBuf,
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
    /// `Some`: serve HTTPS with these certificate files.
    pub tls_files: Option<crate::tls::CertFiles>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--issuer must be an absolute http(s) URL without query or fragment, got {0:?}")]
    BadIssuer(String),
}

impl ServeConfig {
    pub fn new(db: PathBuf, pbkdf2_iterations: u32, args: &ServeArgs) -> Result<Self, ConfigError> {
        let tls_files = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some(crate::tls::CertFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => None,
        };
        let issuer = match &args.issuer {
            Some(raw) => validate_issuer(raw)?,
            None => default_issuer(args.listen, tls_files.is_some()),
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
            tls_files,
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
        self.tls_files.is_some()
    }
}

fn default_issuer(listen: SocketAddr, https: bool) -> String {
    let scheme = if https { "https" } else { "http" };
    format!("{scheme}://{listen}")
}

fn validate_issuer(raw: &str) -> Result<String, ConfigError> {
    let bad = || ConfigError::BadIssuer(raw.to_owned());
    let url = url::Url::parse(raw).map_err(|_| bad())?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host_str().is_none()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(bad());
    }
    Ok(raw.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_is_validated_and_trimmed() {
        assert_eq!(
            validate_issuer("https://auth.example.com/").expect("ok"),
            "https://auth.example.com"
        );
        assert!(validate_issuer("auth.example.com").is_err());
        assert!(validate_issuer("ftp://x").is_err());
        assert!(validate_issuer("https://x/?a=b").is_err());
    }
}
