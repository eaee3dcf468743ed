//! `oauthd client log`: the link doctor. Shows a client's last authorization,
//! token-endpoint and device-page attempts with their outcome and reason, read from the
//! bounded per-client attempt log.

use super::{no_such_client, output, AdminError, Context};
use crate::store::client_log::{self, Entry};
use crate::store::{clients, Store};

pub fn run(
    store: &Store,
    context: &Context,
    id: &str,
    since: Option<i64>,
    limit: Option<u32>,
) -> Result<(), AdminError> {
    let entries = store.with_conn(|conn| {
        if clients::find(conn, id)?.is_none() {
            return Ok(None);
        }
        client_log::recent(conn, id, since, limit.map(i64::from)).map(Some)
    })?;
    let entries = entries.ok_or_else(|| no_such_client(id))?;
    output::either(context, &entries, |entries| {
        if entries.is_empty() {
            return vec![format!("no recorded attempts for client {id:?}")];
        }
        entries.iter().map(line).collect()
    })
}

/// `TIME ENDPOINT GRANT OUTCOME REASON`, then both redirect URIs on a mismatch.
fn line(entry: &Entry) -> String {
    let mut line = format!(
        "{} {} {} {} {}",
        entry.at,
        entry.endpoint,
        output::or_dash(entry.grant_type.as_deref()),
        entry.outcome,
        entry.reason
    );
    if let Some(registered) = &entry.registered_redirect_uri {
        line.push_str(&format!(" registered={registered:?}"));
    }
    if let Some(presented) = &entry.presented_redirect_uri {
        line.push_str(&format!(" presented={presented:?}"));
    }
    line
}
