//! `oauthd tls status`: the ACME certificates stored in the database (domains, issuer,
//! not-after, next renewal, last error), and the expiry check `oauthd check` runs on them
//! and on a `--tls-cert` file. Keys are never read out.

use std::path::Path;

use serde::Serialize;

use super::{output, AdminError, Context};
use crate::store::acme::CertRow;
use crate::store::{iso8601, now, Store};
use crate::tls::{pem, renewal};

/// One stored certificate as `tls status` shows it.
#[derive(Debug, Serialize)]
struct Status {
    domains: Vec<String>,
    issuer: Option<String>,
    not_after: Option<String>,
    not_after_unix: Option<i64>,
    next_renewal: Option<String>,
    failures: i64,
    last_error: Option<String>,
}

#[derive(Debug, Serialize)]
struct Report {
    certificates: Vec<Status>,
}

fn status_of(row: &CertRow) -> Status {
    let validity = match (row.chain_pem.as_ref(), row.not_before, row.not_after) {
        (Some(_), Some(from), Some(to)) => Some((from, to)),
        _ => None,
    };
    let retry = (row.failures > 0).then_some(row.next_attempt).flatten();
    Status {
        domains: row.domains.split(' ').map(str::to_owned).collect(),
        issuer: row.issuer.clone().filter(|_| validity.is_some()),
        not_after: validity.map(|(_, to)| iso8601(to)),
        not_after_unix: validity.map(|(_, to)| to),
        next_renewal: Some(iso8601(renewal::next_attempt(now(), validity, retry))),
        failures: row.failures,
        last_error: row.last_error.clone(),
    }
}

pub fn status(store: &Store, context: &Context) -> Result<(), AdminError> {
    let rows = store.with_conn(|conn| crate::store::acme::certificates(conn))?;
    let report = Report {
        certificates: rows.iter().map(status_of).collect(),
    };
    output::either(context, &report, |r| {
        if r.certificates.is_empty() {
            return vec!["no ACME certificates stored (serve --acme-domain obtains one)".into()];
        }
        let mut lines = Vec::new();
        for c in &r.certificates {
            lines.push(c.domains.join(" "));
            lines.push(format!(
                "  issuer: {}",
                output::or_dash(c.issuer.as_deref())
            ));
            lines.push(format!(
                "  not after: {}",
                c.not_after.as_deref().unwrap_or("- (not issued yet)")
            ));
            lines.push(format!(
                "  next renewal: {}",
                output::or_dash(c.next_renewal.as_deref())
            ));
            lines.push(format!(
                "  last error: {}",
                output::or_dash(c.last_error.as_deref())
            ));
        }
        lines
    })
}

/// Certificates expiring within [`renewal::EXPIRY_WARNING_SECS`]: the stored ACME ones
/// and the `tls_cert` file, each as one line.
pub fn expiring(store: &Store, tls_cert: Option<&Path>) -> Result<Vec<String>, AdminError> {
    let now = now();
    let mut found = Vec::new();
    let rows = store.with_conn(|conn| crate::store::acme::certificates(conn))?;
    for row in rows.iter().filter(|r| r.chain_pem.is_some()) {
        if let Some(not_after) = row.not_after.filter(|t| renewal::expires_soon(*t, now)) {
            found.push(format!(
                "the ACME certificate for {} expires {}",
                row.domains,
                iso8601(not_after)
            ));
        }
    }
    if let Some(path) = tls_cert {
        let text = std::fs::read(path)
            .map_err(|e| AdminError::Invalid(format!("cannot read {}: {e}", path.display())))?;
        let chain = pem::chain(&text)
            .map_err(|e| AdminError::Invalid(format!("{}: {e}", path.display())))?;
        let validity = pem::validity(&chain[0]).ok_or_else(|| {
            AdminError::Invalid(format!(
                "{}: the certificate does not parse",
                path.display()
            ))
        })?;
        if renewal::expires_soon(validity.not_after, now) {
            found.push(format!(
                "the certificate {} expires {}",
                path.display(),
                iso8601(validity.not_after)
            ));
        }
    }
    Ok(found)
}
