//! The metrics listener (`serve --metrics-listen`): `GET /metrics` on its own address, so
//! it can stay on loopback or a private network while the OAuth port faces the world.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use super::Sample;
use crate::app::App;
use crate::error::ApiError;
use crate::http::{self, Body};
use crate::store::StoreError;

/// The OpenMetrics text format `prometheus-client` writes.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves scrapes until the runtime stops; connections are few (a scraper or two).
pub async fn run(listener: TcpListener, app: Arc<App>) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10));
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "metrics accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let app = Arc::clone(&app);
        let service = service_fn(move |req: Request<Incoming>| {
            let app = Arc::clone(&app);
            async move {
                let answer = match (req.method(), req.uri().path()) {
                    (&Method::GET, "/metrics") => scrape(app).await,
                    (_, "/metrics") => Err(ApiError::MethodNotAllowed("GET")),
                    _ => Err(ApiError::NotFound),
                };
                Ok::<_, Infallible>(answer.unwrap_or_else(ApiError::into_response))
            }
        });
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        tokio::spawn(async move {
            let _ = connection.await;
        });
    }
}

/// Reads the scrape-time values and encodes every metric, off the runtime's workers
/// (it stats the database files, or asks PostgreSQL).
async fn scrape(app: Arc<App>) -> Result<Response<Body>, ApiError> {
    let text = tokio::task::spawn_blocking(move || {
        let storage = app.store.storage_size();
        let sample = Sample {
            hash_queue_depth: app.hasher.in_flight() as u64,
            hash_queue_capacity: app.hasher.capacity() as u64,
            hash_busy_refusals: app.hasher.refusals(),
            lockouts: app.throttle.lockouts(),
            database_bytes: storage.database_bytes,
            wal_bytes: storage.wal_bytes,
        };
        app.metrics.render(sample)
    })
    .await
    .map_err(|_| StoreError::TaskFailed)?
    .map_err(|_| StoreError::TaskFailed)?;
    Ok(http::bytes(StatusCode::OK, CONTENT_TYPE, text.into()))
}
