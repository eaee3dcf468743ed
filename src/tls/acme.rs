//! Certificates by ACME (RFC 8555), kept in the database: at start the stored certificate
//! (if any) is served; a task then issues one when none is stored and renews it at two
//! thirds of its lifetime, backing off after failures. A failed attempt keeps the served
//! certificate and logs why (never a key). A certificate issued while the database cannot
//! store it (a full disk, a read-only mount) is served at once and kept in memory, its
//! save retried every few seconds; the task also remembers its failures and backoff
//! itself, so a database that cannot record them never makes it ask the CA in a loop.
//!
//! Several servers on one database (PostgreSQL): one orders at a time, holding a lease
//! row while it does; the others wait, and each serves a later stored certificate within
//! [`renewal::PICKUP_SECS`] (at once when it was waiting on the lease). The challenge
//! answers are offered through the database, so whichever instance the CA reaches answers.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use rustls::sign::CertifiedKey;

use super::challenges::Challenges;
use super::{pem, renewal, Resolver};
use crate::store::{self, acme::CertRow, Store, StoreError};

/// Let's Encrypt's production directory, the default of `--acme-directory`.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// How often the save of a certificate the database refused is retried (a local write,
/// not a request to the CA).
const SAVE_RETRY_SECS: i64 = 5;

/// One attempt (account, order, validation, certificate) gives up after this long.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(300);

/// The ordering lease outlives the longest attempt (and the writes after it); a holder
/// that died mid-order blocks the others this long at most.
const LEASE_SECS: i64 = 360;

/// How often an instance waiting on another's lease looks at the stored certificate.
const LEASE_POLL_SECS: u64 = 2;

/// Polling an order until validated, then until its certificate is ready.
fn retry_policy() -> RetryPolicy {
    RetryPolicy::new()
        .initial_delay(Duration::from_millis(250))
        .backoff(1.5)
        .timeout(Duration::from_secs(90))
}

/// `--acme-domain`: a DNS name (letters, digits, hyphens, dots), stored lower-case.
pub fn domain_arg(value: &str) -> Result<String, String> {
    let name = value.trim_end_matches('.').to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if name.len() > 253
        || !name.split('.').all(label_ok)
        || name.parse::<std::net::IpAddr>().is_ok()
    {
        return Err(format!("{value:?} is not a DNS name"));
    }
    Ok(name)
}

/// `--acme-directory`: an https URL.
pub fn directory_arg(value: &str) -> Result<String, String> {
    let url = url::Url::parse(value).map_err(|e| format!("{value:?}: {e}"))?;
    if url.scheme() != "https" {
        return Err(format!(
            "{value:?}: the ACME directory must be an https URL"
        ));
    }
    Ok(value.to_owned())
}

/// What `serve --acme-*` asked for.
#[derive(Debug, Clone)]
pub struct AcmeConfig {
    pub domains: Vec<String>,
    pub email: Option<String>,
    pub directory: String,
    /// An extra root to trust for the ACME server's own HTTPS.
    pub ca_root: Option<PathBuf>,
    /// HTTP-01 (the `--http-listen` listener answers) instead of TLS-ALPN-01.
    pub http_challenge: bool,
}

impl AcmeConfig {
    /// The database key of this set of domains.
    pub fn key(&self) -> String {
        store::acme::domains_key(&self.domains)
    }
}

/// The stored certificate for `config`'s domains, served meanwhile (even if expired: a
/// client then sees why). `None` when none is stored or it no longer parses.
pub fn stored_certificate(
    store: &Store,
    config: &AcmeConfig,
) -> Result<Option<Arc<CertifiedKey>>, StoreError> {
    let row = store.with_conn(|conn| store::acme::certificate(conn, &config.key()))?;
    Ok(row.and_then(|row| match servable(&row) {
        Ok(certified) => certified,
        Err(e) => {
            tracing::warn!(domains = %row.domains, error = %e, "ACME: the stored certificate is unusable; issuing a new one");
            None
        }
    }))
}

fn servable(row: &CertRow) -> Result<Option<Arc<CertifiedKey>>, pem::PemError> {
    match (&row.chain_pem, &row.key_pem) {
        (Some(chain), Some(key)) => pem::pair(chain.as_bytes(), key.as_bytes()).map(Some),
        _ => Ok(None),
    }
}

/// The issuing and renewing task with what it needs.
pub struct Acme {
    pub config: AcmeConfig,
    pub store: Store,
    pub resolver: Arc<Resolver>,
    pub challenges: Arc<Challenges>,
    unrecorded: Unrecorded,
    /// Names this task in the ordering lease.
    holder: String,
}

/// What the task knows that the database may not hold: it must not forget a certificate
/// it serves, nor a backoff, because a write failed.
#[derive(Default)]
struct Unrecorded {
    /// Issued and served, but not stored yet.
    certificate: Option<CertRow>,
    /// Consecutive failed attempts and when the next may start.
    failures: i64,
    retry_at: Option<i64>,
}

impl Acme {
    /// Issues and renews forever.
    pub async fn run(mut self) {
        loop {
            if self.unrecorded.certificate.is_some() {
                self.save_unsaved().await;
            }
            let wait = match self.wait_secs().await {
                Ok(wait) => wait,
                Err(e) => {
                    tracing::warn!(error = %e, "ACME: cannot read the stored certificate; retrying");
                    renewal::FIRST_BACKOFF_SECS
                }
            };
            if wait > 0 {
                tokio::time::sleep(Duration::from_secs(wait as u64)).await;
                continue;
            }
            if !self.take_lease().await {
                // Another instance is ordering: its certificate is served once stored.
                tokio::time::sleep(Duration::from_secs(LEASE_POLL_SECS)).await;
                continue;
            }
            // It may have stored one between the read above and the lease.
            if matches!(self.wait_secs().await, Ok(0)) {
                self.attempt().await;
            }
            self.release_lease().await;
        }
    }

    /// Seconds until the next attempt (0: due), after serving a later certificate
    /// another instance stored. Woken at least every [`renewal::PICKUP_SECS`], so such a
    /// certificate is served soon and a clock jump cannot delay a renewal for long.
    async fn wait_secs(&self) -> Result<i64, String> {
        let row = self.read_row().await?;
        if let Some(row) = &row {
            self.pick_up(row);
        }
        let due = self.next_attempt(row.as_ref());
        let mut wait = (due - store::now()).clamp(0, renewal::PICKUP_SECS);
        if self.unrecorded.certificate.is_some() {
            wait = wait.min(SAVE_RETRY_SECS);
        }
        Ok(wait)
    }

    /// Serves the stored certificate if it is later than the one served.
    fn pick_up(&self, row: &CertRow) {
        if !renewal::serve_stored(self.resolver.not_after(), row.not_after) {
            return;
        }
        match servable(row) {
            Ok(Some(certified)) => {
                self.resolver.replace(certified);
                tracing::info!(domains = %row.domains, "ACME: serving the certificate stored by another instance");
            }
            Ok(None) => {}
            Err(e) => {
                tracing::debug!(domains = %row.domains, error = %e, "ACME: the stored certificate is unusable")
            }
        }
    }

    /// Takes the ordering lease where several servers share the database (always
    /// granted on one server's file). A database error grants it: renewing twice beats
    /// not renewing.
    async fn take_lease(&self) -> bool {
        if !self.store.shared_by_servers() {
            return true;
        }
        let (domains, holder) = (self.config.key(), self.holder.clone());
        let now = store::now();
        let taken = self
            .store
            .write(move |conn| {
                store::acme::take_order_lease(conn, &domains, &holder, now, now + LEASE_SECS)
            })
            .await;
        taken.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "ACME: cannot take the ordering lease; ordering anyway");
            true
        })
    }

    async fn release_lease(&self) {
        if !self.store.shared_by_servers() {
            return;
        }
        let (domains, holder) = (self.config.key(), self.holder.clone());
        let released = self
            .store
            .write(move |conn| store::acme::release_order_lease(conn, &domains, &holder))
            .await;
        if let Err(e) = released {
            tracing::debug!(error = %e, "ACME: cannot release the ordering lease; it expires by itself");
        }
    }

    async fn read_row(&self) -> Result<Option<CertRow>, String> {
        let key = self.config.key();
        self.store
            .read(move |conn| store::acme::certificate(conn, &key))
            .await
            .map_err(|e| e.to_string())
    }

    /// When the next issuance is due: by the certificate served (the unsaved one, else the
    /// stored one), never before the later of the stored and the remembered backoff.
    fn next_attempt(&self, row: Option<&CertRow>) -> i64 {
        let served = self.unrecorded.certificate.as_ref().or(row);
        let validity = served
            .filter(|r| r.chain_pem.is_some())
            .and_then(|r| Some((r.not_before?, r.not_after?)));
        let stored_retry = row.filter(|r| r.failures > 0).and_then(|r| r.next_attempt);
        let retry = stored_retry.max(self.unrecorded.retry_at);
        renewal::next_attempt(store::now(), validity, retry)
    }

    /// One issuance; its outcome is stored and logged.
    async fn attempt(&mut self) {
        let domains = self.config.key();
        tracing::info!(%domains, directory = %self.config.directory, "ACME: requesting a certificate");
        let outcome = match tokio::time::timeout(ATTEMPT_TIMEOUT, self.issue()).await {
            Ok(outcome) => outcome,
            Err(_) => Err(format!("no answer within {}s", ATTEMPT_TIMEOUT.as_secs())),
        };
        self.challenges.clear().await;
        let stored = match outcome {
            Ok((chain, key)) => self.store_issued(chain, key).await,
            Err(e) => Err(e),
        };
        if let Err(e) = stored {
            self.store_failure(&domains, &e).await;
        }
    }

    /// Serves the issued pair and stores it (chain and key in one row, one write); a
    /// refused write keeps it in memory for [`Acme::save_unsaved`].
    async fn store_issued(&mut self, chain: String, key: String) -> Result<(), String> {
        let certified = pem::pair(chain.as_bytes(), key.as_bytes())
            .map_err(|e| format!("the issued certificate is unusable: {e}"))?;
        let leaf = certified
            .end_entity_cert()
            .map_err(|e| format!("the issued certificate is unusable: {e}"))?;
        let validity =
            pem::validity(leaf).ok_or("the issued certificate's validity does not parse")?;
        let row = CertRow {
            domains: self.config.key(),
            chain_pem: Some(chain),
            key_pem: Some(key),
            issuer: Some(validity.issuer.clone()),
            not_before: Some(validity.not_before),
            not_after: Some(validity.not_after),
            issued_at: Some(store::now()),
            ..CertRow::default()
        };
        // Served even when it cannot be stored: it is valid and later than the stored one
        // (renewal runs at two thirds of that one's life), and asking the CA again would
        // spend its rate limit on duplicates.
        self.resolver.replace(certified);
        self.unrecorded = Unrecorded::default();
        if let Err(e) = self.save(row.clone()).await {
            let error = format!("cannot store the issued certificate: {e}");
            tracing::error!(
                domains = %row.domains, %error, retry_every_secs = SAVE_RETRY_SECS,
                "ACME: certificate issued and served but not stored; until it is, a restart serves the stored one"
            );
            self.unrecorded.certificate = Some(row);
            // Shown by `tls status` if the database can take this smaller write.
            let (domains, next) = (self.config.key(), store::now() + SAVE_RETRY_SECS);
            let _ = self
                .store
                .write(move |conn| store::acme::record_failure(conn, &domains, &error, 1, next))
                .await;
            return Ok(());
        }
        tracing::info!(
            domains = %self.config.key(),
            not_after = %store::iso8601(validity.not_after),
            renew_at = %store::iso8601(renewal::renew_at(validity.not_before, validity.not_after)),
            "ACME: certificate issued and served"
        );
        Ok(())
    }

    /// Retries storing the certificate issued earlier; the write error was logged when it
    /// first failed.
    async fn save_unsaved(&mut self) {
        let Some(row) = self.unrecorded.certificate.clone() else {
            return;
        };
        let domains = row.domains.clone();
        match self.save(row).await {
            Ok(()) => {
                self.unrecorded.certificate = None;
                tracing::info!(%domains, "ACME: the certificate issued earlier is now stored");
            }
            Err(e) => {
                tracing::debug!(%domains, error = %e, "ACME: still cannot store the certificate")
            }
        }
    }

    /// Stores a certificate with its key, in one row by one write.
    async fn save(&self, row: CertRow) -> Result<(), StoreError> {
        self.store
            .write(move |conn| store::acme::save_certificate(conn, &row))
            .await
    }

    async fn store_failure(&mut self, domains: &str, error: &str) {
        let stored_failures = match self.read_row().await {
            Ok(row) => row.map_or(0, |r| r.failures),
            Err(_) => 0,
        };
        let failures = stored_failures.max(self.unrecorded.failures) + 1;
        let next = store::now() + renewal::backoff_secs(failures);
        self.unrecorded.failures = failures;
        self.unrecorded.retry_at = Some(next);
        let serving = if self.resolver.not_after().is_some() {
            "still serving the stored certificate"
        } else {
            "no certificate yet: TLS handshakes are refused until one is issued"
        };
        // Recorded first: once the log says so, `oauthd tls status` shows it too.
        let (row_domains, row_error) = (domains.to_owned(), error.to_owned());
        let recorded = self
            .store
            .write(move |conn| {
                store::acme::record_failure(conn, &row_domains, &row_error, failures, next)
            })
            .await;
        if recorded.is_err() {
            tracing::warn!("ACME: could not record the failed attempt");
        }
        tracing::warn!(
            %domains, %error, failures, retry_at = %store::iso8601(next),
            "ACME: certificate not issued; {serving}"
        );
    }

    /// The stored account for the directory, or a new one (stored at once).
    async fn account(&self) -> Result<Account, String> {
        let builder = || {
            match &self.config.ca_root {
                Some(root) => Account::builder_with_root(root),
                None => Account::builder(),
            }
            .map_err(|e| format!("cannot set up the ACME client: {e}"))
        };
        let directory = self.config.directory.clone();
        let stored = self
            .store
            .read(move |conn| store::acme::account(conn, &directory))
            .await
            .map_err(|e| e.to_string())?;
        if let Some(json) = stored {
            let credentials: AccountCredentials = serde_json::from_str(&json)
                .map_err(|e| format!("the stored ACME account does not parse: {e}"))?;
            return builder()?
                .from_credentials(credentials)
                .await
                .map_err(|e| format!("ACME account: {}", causes(&e)));
        }
        let contact = self.config.email.as_ref().map(|e| format!("mailto:{e}"));
        let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
        let (account, credentials) = builder()?
            .create(
                &NewAccount {
                    contact: &contacts,
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                },
                self.config.directory.clone(),
                None,
            )
            .await
            .map_err(|e| format!("cannot create the ACME account: {}", causes(&e)))?;
        let json = serde_json::to_string(&credentials).map_err(|e| e.to_string())?;
        let directory = self.config.directory.clone();
        self.store
            .write(move |conn| store::acme::save_account(conn, &directory, &json, store::now()))
            .await
            .map_err(|e| format!("cannot store the ACME account: {e}"))?;
        tracing::info!(directory = %self.config.directory, "ACME: account created");
        Ok(account)
    }

    /// Account, order, challenges, finalization: the certificate chain and key as PEM.
    async fn issue(&self) -> Result<(String, String), String> {
        let account = self.account().await?;
        let identifiers: Vec<Identifier> = self
            .config
            .domains
            .iter()
            .map(|d| Identifier::Dns(d.to_ascii_lowercase()))
            .collect();
        let mut order = account
            .new_order(&NewOrder::new(&identifiers))
            .await
            .map_err(|e| format!("the ACME server refused the order: {}", causes(&e)))?;
        let kind = if self.config.http_challenge {
            ChallengeType::Http01
        } else {
            ChallengeType::TlsAlpn01
        };
        let mut authorizations = order.authorizations();
        while let Some(authz) = authorizations.next().await {
            let mut authz = authz.map_err(|e| format!("ACME authorization: {e}"))?;
            match authz.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                other => {
                    return Err(format!(
                        "authorization for {} is {other:?}",
                        authz.identifier()
                    ))
                }
            }
            let domain = authz.identifier().to_string();
            let mut challenge = authz.challenge(kind.clone()).ok_or_else(|| {
                format!("the ACME server offers no {kind:?} challenge for {domain}")
            })?;
            let key_authorization = challenge.key_authorization();
            if self.config.http_challenge {
                self.challenges
                    .offer_http(&challenge.token, key_authorization.as_str())
                    .await;
            } else {
                self.challenges
                    .offer_alpn(&domain, key_authorization.as_str())
                    .await
                    .map_err(|e| format!("cannot make the TLS-ALPN-01 certificate: {e}"))?;
            }
            challenge
                .set_ready()
                .await
                .map_err(|e| format!("{domain}: challenge not accepted: {e}"))?;
        }
        match order.poll_ready(&retry_policy()).await {
            Ok(OrderStatus::Ready) => {}
            Ok(other) => return Err(refusal(&mut order, format!("the order is {other:?}")).await),
            Err(instant_acme::Error::Api(problem)) => {
                return Err(refusal(&mut order, problem.to_string()).await)
            }
            Err(e) => return Err(format!("waiting for validation: {e}")),
        }
        let key = order
            .finalize()
            .await
            .map_err(|e| format!("finalizing the order: {e}"))?;
        let chain = order
            .poll_certificate(&retry_policy())
            .await
            .map_err(|e| format!("downloading the certificate: {e}"))?;
        Ok((chain, key))
    }
}

/// Why the ACME server did not validate the order: each failed challenge's problem, else
/// `otherwise`.
async fn refusal(order: &mut instant_acme::Order, otherwise: String) -> String {
    let mut reasons = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(Ok(authz)) = authorizations.next().await {
        for challenge in &authz.challenges {
            if let Some(problem) = &challenge.error {
                reasons.push(format!("{}: {problem}", authz.identifier()));
            }
        }
    }
    if reasons.is_empty() {
        format!("the ACME server did not validate the order: {otherwise}")
    } else {
        format!("challenge refused: {}", reasons.join("; "))
    }
}

/// Starts the issuing task and, with `--http-listen`, the plain-HTTP listener, on the
/// current runtime. `http` was bound before the runtime started.
pub fn spawn(
    tls: &super::Tls,
    store: Store,
    acme: Option<&AcmeConfig>,
    https_port: u16,
    http: Option<std::net::TcpListener>,
) -> std::io::Result<()> {
    let (Some(acme), Some(challenges)) = (acme, &tls.challenges) else {
        return Ok(());
    };
    if let Some(http) = http {
        let http = tokio::net::TcpListener::from_std(http)?;
        tracing::info!(address = %http.local_addr()?, "http listening (ACME HTTP-01, redirects to https)");
        let target = super::http_challenge::HttpsTarget {
            domains: acme.domains.clone(),
            https_port,
        };
        tokio::spawn(super::http_challenge::run(
            http,
            Arc::clone(challenges),
            target,
        ));
    }
    tokio::spawn(
        Acme {
            config: acme.clone(),
            store,
            resolver: Arc::clone(&tls.resolver),
            challenges: Arc::clone(challenges),
            unrecorded: Unrecorded::default(),
            holder: lease_holder(),
        }
        .run(),
    );
    Ok(())
}

/// A name for this task in the ordering lease: the process and a random part (process
/// ids repeat across machines).
fn lease_holder() -> String {
    let mut random = [0u8; 8];
    // Without randomness the pid alone still names it on this machine.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random);
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{hex}", std::process::id())
}

/// An error with its sources ("client error (Connect): tcp connect error: Connection
/// refused"), so a log line says what actually failed.
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
