//! Whole-database commands: `token revoke`, `backup`, `check` and `audit`. The SQLite
//! work itself (online backup, integrity pragmas, audit query) lives in `store/`; this
//! module checks arguments and prints.

use std::path::Path;

use serde::Serialize;
use serde_json::json;

use super::progress::Progress;
use super::{no_such_client, no_such_user, output, AdminError, Context};
use crate::cli::TokenCommand;
use crate::oauth;
use crate::store::audit::{self, AdminEvent};
use crate::store::{
    self, brands, client_tokens, clients, grants, housekeeping, maintenance, orgs, users, Store,
};

/// The `audit` command's filters, as typed.
pub struct AuditArgs {
    pub user: Option<String>,
    pub client: Option<String>,
    /// Unix seconds, parsed by clap.
    pub since: Option<i64>,
    pub limit: Option<u32>,
}

/// The summary `check` prints.
#[derive(Debug, Serialize)]
struct Summary {
    integrity: &'static str,
    problems: Vec<String>,
    users: i64,
    clients: i64,
    brands: i64,
    organizations: i64,
    live_access_tokens: i64,
    live_refresh_tokens: i64,
    /// Accounts whose emails fold to one key (kept apart since before Unicode folding).
    email_collisions: Vec<Vec<String>>,
    /// TLS certificates expiring within 14 days.
    expiring_certificates: Vec<String>,
}

/// Revokes the grants of one user, one client, or all; clap guarantees exactly one
/// selector. The revocation and its audit entry share one transaction.
pub fn token(command: TokenCommand, store: &Store, context: &Context) -> Result<(), AdminError> {
    let TokenCommand::Revoke { user, client, all } = command;
    let revoked = audit::admin_change(
        store,
        |tx| {
            Ok(match (&user, &client) {
                (Some(email), _) => match users::id_of(tx, email)? {
                    Some(user_id) => Some(grants::revoke_where_user(tx, &user_id)?),
                    None => None,
                },
                (None, Some(client_id)) => match clients::find(tx, client_id)? {
                    Some(_) => {
                        // Its client-credentials tokens too (they belong to no grant).
                        client_tokens::revoke_all_of(tx, Some(client_id))?;
                        Some(grants::revoke_where_client(tx, client_id)?)
                    }
                    None => None,
                },
                (None, None) if all => {
                    client_tokens::revoke_all_of(tx, None)?;
                    Some(grants::revoke_all(tx)?)
                }
                (None, None) => None,
            })
        },
        |revoked| {
            revoked.map(|count| AdminEvent {
                event: "token_revoke_admin",
                user_email: user.as_deref(),
                client_id: client.as_deref(),
                detail: Some(format!("{count} grant(s)")),
            })
        },
    )?;
    let revoked = revoked.ok_or_else(|| match (&user, &client) {
        (Some(email), _) => no_such_user(email),
        (None, Some(id)) => no_such_client(id),
        (None, None) => AdminError::Invalid("choose --user, --client or --all".into()),
    })?;
    output::either(context, &json!({"revoked_grants": revoked}), |_| {
        vec![format!("revoked {revoked} grant(s) and all their tokens")]
    })
}

/// What `backup` says on PostgreSQL, whose backups are PostgreSQL's own tool's job.
pub(crate) const BACKUP_ON_POSTGRES: &str = "use pg_dump: the PostgreSQL store is backed up with pg_dump, e.g. `pg_dump -Fc URL > oauthd.dump`";

/// What `restore` says on PostgreSQL: it replaces an SQLite file.
const RESTORE_ON_POSTGRES: &str = "use pg_restore: `oauthd restore` replaces an SQLite file; the PostgreSQL store is restored from a pg_dump with pg_restore, e.g. `pg_restore --clean -d URL oauthd.dump`";

pub fn backup(
    store: &Store,
    context: &Context,
    dest: &Path,
    force: bool,
) -> Result<(), AdminError> {
    let progress = Progress::start(context, &format!("backing up to {}", dest.display()));
    let (Some(file), Some(source)) = (store.file(), context.db.file()) else {
        return Err(AdminError::Invalid(BACKUP_ON_POSTGRES.into()));
    };
    maintenance::backup_to(file, source, dest, force)?;
    drop(progress);
    output::either(
        context,
        &json!({"backup": dest.display().to_string()}),
        |_| vec![format!("backup written to {}", dest.display())],
    )
}

/// Puts a checked copy of `backup` in place of the database, keeping the old files, then
/// runs `check` on the result.
pub fn restore(context: &Context, backup: &Path) -> Result<(), AdminError> {
    let db = context
        .db
        .file()
        .ok_or_else(|| AdminError::Invalid(RESTORE_ON_POSTGRES.into()))?;
    let restored = store::restore::restore(db, backup)?;
    for aside in &restored.moved_aside {
        tracing::info!("kept the previous file as {}", aside.display());
    }
    tracing::info!(
        "restored {} to {}; checking it",
        backup.display(),
        db.display()
    );
    check(&Store::open_existing(db)?, context, None)
}

/// Runs the integrity checks and prints the summary; a damaged database still gets its
/// summary printed, then exits 1.
pub fn check(
    store: &Store,
    context: &Context,
    tls_cert: Option<&std::path::Path>,
) -> Result<(), AdminError> {
    let expiring_certificates = super::tls::expiring(store, tls_cert)?;
    if let Some(file) = context.db.file() {
        store::files::warn_if_readable_by_others(file);
    }
    let progress = Progress::start(context, "checking integrity");
    // The file's own checks; PostgreSQL checks its storage itself.
    let (integrity, problems) = match store.file() {
        Some(file) => {
            let problems = file.with_conn(|conn| maintenance::integrity_problems(conn))?;
            (if problems.is_empty() { "ok" } else { "failed" }, problems)
        }
        None => (
            "not checked (PostgreSQL checks its own storage)",
            Vec::new(),
        ),
    };
    let summary = store.with_conn(|conn| {
        progress.stage("counting");
        let (access, refresh) = grants::token_facts_counts(conn)?;
        let now = store::now();
        let count_live = |groups: Vec<(oauth::TokenFacts, i64)>| -> i64 {
            groups
                .iter()
                .filter(|(facts, _)| oauth::liveness(Some(facts), now) == oauth::Liveness::Live)
                .map(|(_, n)| n)
                .sum()
        };
        let (live_access_tokens, live_refresh_tokens) = (count_live(access), count_live(refresh));
        Ok(Summary {
            integrity,
            problems,
            users: users::count(conn)?,
            clients: clients::count(conn)?,
            brands: brands::count(conn)?,
            organizations: orgs::count(conn)?,
            live_access_tokens,
            live_refresh_tokens,
            email_collisions: users::email_collisions(conn)?,
            expiring_certificates,
        })
    })?;
    drop(progress);
    output::either(context, &summary, |s| {
        let mut lines = vec![format!("integrity: {}", s.integrity)];
        lines.extend(s.problems.iter().map(|p| format!("  problem: {p}")));
        lines.extend([
            format!("users: {}", s.users),
            format!("clients: {}", s.clients),
            format!("brands: {}", s.brands),
            format!("organizations: {}", s.organizations),
            format!("live access tokens: {}", s.live_access_tokens),
            format!("live refresh tokens: {}", s.live_refresh_tokens),
        ]);
        lines.extend(
            s.email_collisions
                .iter()
                .map(|emails| format!("email collision (cannot sign in): {}", emails.join(" "))),
        );
        lines.extend(
            s.expiring_certificates
                .iter()
                .map(|c| format!("expiring soon: {c}")),
        );
        lines
    })?;
    if let Some(first) = summary.problems.first() {
        return Err(AdminError::Invalid(format!(
            "integrity check failed ({} problem(s)), first: {first}",
            summary.problems.len()
        )));
    }
    if !summary.email_collisions.is_empty() {
        return Err(AdminError::Invalid(format!(
            "{} email(s) are shared by several accounts once letter case is folded; \
             keep one account of each (oauthd user remove EMAIL, exactly as listed)",
            summary.email_collisions.len()
        )));
    }
    if let Some(first) = summary.expiring_certificates.first() {
        return Err(AdminError::Invalid(format!(
            "{first}: renew it (`oauthd tls status` shows why ACME has not)"
        )));
    }
    Ok(())
}

pub fn audit(store: &Store, context: &Context, args: AuditArgs) -> Result<(), AdminError> {
    let filter = audit::Filter {
        user_email: args.user,
        client_id: args.client,
        since: args.since,
        limit: args.limit.map(i64::from),
    };
    let entries = store.with_conn(|conn| audit::query(conn, &filter))?;
    output::either(context, &entries, |entries| {
        if entries.is_empty() {
            return vec!["no audit events".to_owned()];
        }
        entries
            .iter()
            .map(|e| {
                let mut line = format!("{} {}", e.at, e.event);
                for (key, value) in [
                    ("user", &e.user_email),
                    ("client", &e.client_id),
                    ("from", &e.remote_addr),
                    ("detail", &e.detail),
                ] {
                    if let Some(value) = value {
                        line.push_str(&format!(" {key}={value:?}"));
                    }
                }
                line
            })
            .collect()
    })
}

/// `audit prune --older-than`: deletes the audit rows older than `older_than`, one small
/// transaction at a time (so a running server's writes are held up by one batch at most),
/// then records the prune itself.
pub fn prune_audit(
    store: &Store,
    context: &Context,
    older_than: std::time::Duration,
) -> Result<(), AdminError> {
    let cutoff = housekeeping::audit_cutoff(older_than, store::now());
    let deleted = housekeeping::walk(
        |from| store.transaction(|tx| housekeeping::prune_audit(tx, from, cutoff)),
        || false,
    )?;
    let before = store::iso8601(cutoff);
    audit::admin_change(
        store,
        |_| Ok(()),
        |_| {
            Some(AdminEvent {
                event: "audit_prune",
                user_email: None,
                client_id: None,
                detail: Some(format!("deleted {deleted} rows before {before}")),
            })
        },
    )?;
    output::either(
        context,
        &json!({"deleted": deleted, "before": before}),
        |_| vec![format!("deleted {deleted} audit rows from before {before}")],
    )
}
