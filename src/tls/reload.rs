//! Picking up renewed certificate files without a restart: on SIGHUP the files are read
//! again; a bad pair is logged and the running certificate kept.

use std::sync::Arc;

use super::{CertFiles, Resolver};

/// Reloads `files` into `resolver` on every SIGHUP, forever.
pub async fn reload_on_sighup(files: CertFiles, resolver: Arc<Resolver>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(hangups) => hangups,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGHUP: certificate files reload only on restart");
            return;
        }
    };
    while hangups.recv().await.is_some() {
        let loading = files.clone();
        match tokio::task::spawn_blocking(move || loading.load()).await {
            Ok(Ok(certified)) => {
                resolver.replace(certified);
                tracing::info!(cert = %files.cert.display(), "SIGHUP: certificate reloaded");
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "SIGHUP: certificate not reloaded; still serving the previous one");
            }
            Err(e) => tracing::warn!(error = %e, "SIGHUP: certificate reload failed"),
        }
    }
}
