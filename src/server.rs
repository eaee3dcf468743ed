//! The HTTP server: opening the store, binding, the accept loop (hyper http1 with
//! hyper-util's graceful shutdown), building the shared [`App`] state every handler receives.
//!
//! `run` takes an already-bound listener and a shutdown future, so tests and `serve` use
//! the same code; `serve` prints the one `listening on http://ADDR` line once bound
//! (`https://` with TLS on: each connection's handshake first, then HTTP/2 or HTTP/1.1).

use std::convert::Infallible;
use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::app::App;
use crate::config::ServeConfig;
use crate::conn_limit::ConnectionLimits;
use crate::device_memory::Answers;
use crate::metrics::{self, Metrics};
use crate::password::HashPool;
use crate::rotation_clock::{self, RotationClock};
use crate::store::{Store, StoreError};
use crate::tls::{self, Tls};
use crate::{csrf, fscheck, routes, store, throttle};

/// Slow clients get this long to send a request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    UnsafeFilesystem(String),
    #[error("{0}: `oauthd restore` is replacing this database; start the server when it is done")]
    Locked(std::path::PathBuf),
    #[error("cannot listen on {addr}: {cause}")]
    Bind {
        addr: SocketAddr,
        cause: std::io::Error,
    },
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    #[error("HTTPS: {0}")]
    Tls(#[from] tls::TlsError),
}

/// Opens the SQLite file at `path` for the server, with the lock that keeps `restore` away
/// while it runs (held until the lock is dropped).
fn open_file(
    path: &std::path::Path,
    config: &ServeConfig,
) -> Result<(Store, Option<store::files::DatabaseLock>), ServeError> {
    if !config.allow_network_fs {
        fscheck::refuse_network_fs(path).map_err(ServeError::UnsafeFilesystem)?;
    }
    let lock = store::files::DatabaseLock::shared(path).map_err(|e| match e {
        store::files::LockError::Held => ServeError::Locked(path.to_owned()),
        store::files::LockError::Io(e) => ServeError::Store(
            store::diagnose::access_problem(path).unwrap_or(StoreError::Open {
                path: path.to_owned(),
                cause: format!("cannot take the lock file: {e}"),
            }),
        ),
    })?;
    let store = Store::open(path)?;
    store::files::warn_if_readable_by_others(path);
    Ok((store, Some(lock)))
}

/// Opens the database, binds, prints `listening on http://ADDR`, and serves until SIGINT
/// or SIGTERM.
pub fn serve(config: ServeConfig) -> Result<(), ServeError> {
    // Checked before anything else starts: a bad pair is an error at start, not per handshake.
    let tls = config.tls_files.as_ref().map(Tls::from_files).transpose()?;
    // The lock is held until serve returns: `restore` refuses while any server holds it.
    let (mut store, _lock) = match &config.db {
        store::Location::File(path) => open_file(path, &config)?,
        #[cfg(feature = "postgres")]
        store::Location::Postgres(url) => (Store::connect_postgres(url)?, None),
    };
    store.check_writable()?;
    store.start_writer(config.audit_retention)?;
    let tls = match (tls, &config.acme) {
        (None, Some(acme)) => Some(Tls::for_acme(
            tls::acme::stored_certificate(&store, acme)?,
            Arc::new(tls::Challenges::on(&store)),
        )?),
        (tls, _) => tls,
    };
    let http_listener = config.http_listen.map(bind).transpose()?;
    let listen = config.listen;
    let bind_error = move |cause| ServeError::Bind {
        addr: listen,
        cause,
    };
    let (listener, bound) = bind(config.listen)?;
    let config = config.with_bound_address(bound);
    // Synchronous, before the runtime exists: no SQLite on a tokio worker, even at start.
    hint_when_empty(&store);
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let hasher = HashPool::new(cores, config.pbkdf2_iterations);
    hasher.raise_verify_cost(strongest_stored_hash(&store));
    let writes = store.clone();
    let csrf = csrf::Csrf::load(&store, config.issuer.starts_with("https://"))?;
    // Other servers of a shared database answer device codes and count login failures too.
    let (answers, shared_failures) = if store.shared_by_servers() {
        let failures = store.with_conn(|db| throttle::shared::SharedFailures::load(db))?;
        (Answers::RecordedElsewhereToo, Some(Arc::new(failures)))
    } else {
        (Answers::RecordedHere, None)
    };
    let metrics_listener = match config.metrics_listen {
        Some(addr) => Some(bind(addr)?),
        None => None,
    };
    let app = Arc::new(App {
        metrics: Metrics::new(&store.writer_metrics()),
        throttle: throttle::Throttle::new(hasher.capacity()),
        hasher,
        rotations: Arc::new(RotationClock::new(
            config.refresh_grace_secs,
            rotation_clock::CAPACITY,
        )),
        csrf,
        devices: crate::device_memory::DeviceMemory::new(config.device_code_ttl_secs, answers),
        store,
        config,
        signing_keys: crate::oidc_keys::SigningKeys::default(),
        shared_failures,
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Every blocking task holds one pooled connection; more threads than connections
        // would only wait for one, each with its own stack.
        .max_blocking_threads(app.store.connections())
        .build()
        .map_err(ServeError::Runtime)?;
    let served = runtime.block_on(async move {
        let listener = TcpListener::from_std(listener).map_err(bind_error)?;
        if let Some((scrapes, at)) = metrics_listener {
            let scrapes = TcpListener::from_std(scrapes)
                .map_err(|cause| ServeError::Bind { addr: at, cause })?;
            tracing::info!(address = %at, "metrics listening");
            tokio::spawn(metrics::listener::run(scrapes, Arc::clone(&app)));
        }
        let mut stdout = std::io::stdout();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let _ = writeln!(stdout, "listening on {scheme}://{bound}");
        let _ = stdout.flush();
        tracing::info!(db = %app.config.db, issuer = %app.config.issuer, "oauthd started");
        tokio::spawn(follow_strongest_stored_hash(Arc::clone(&app)));
        tokio::spawn(crate::sd_notify::ready_then_watchdog());
        if let (Some(tls), Some(files)) = (&tls, &app.config.tls_files) {
            tokio::spawn(tls::reload_on_sighup(
                files.clone(),
                Arc::clone(&tls.resolver),
            ));
        }
        if let Some(tls) = &tls {
            let watching = Arc::clone(&app);
            tls.resolver
                .watch_expiry(move |not_after| watching.metrics.set_certificate_expiry(not_after));
            let http = http_listener.map(|(listener, _)| listener);
            let (acme, port) = (app.config.acme.as_ref(), app.config.listen.port());
            tls::acme::spawn(tls, app.store.clone(), acme, port, http).map_err(bind_error)?;
        }
        run(listener, app, shutdown_signal(), tls).await;
        Ok(())
    });
    // Requests still running past the drain are abandoned here, not awaited.
    runtime.shutdown_background();
    writes.stop_writer();
    served
}

/// A non-blocking listener on `addr`, and the address actually bound.
fn bind(addr: SocketAddr) -> Result<(std::net::TcpListener, SocketAddr), ServeError> {
    let bind_error = |cause| ServeError::Bind { addr, cause };
    let listener = std::net::TcpListener::bind(addr).map_err(bind_error)?;
    listener.set_nonblocking(true).map_err(bind_error)?;
    let bound = listener.local_addr().map_err(bind_error)?;
    Ok((listener, bound))
}

/// Serves connections from `listener` until `shutdown` completes, then stops accepting
/// and waits (up to a grace period) for requests in flight. With `tls`, each connection
/// is a TLS handshake and then HTTP/2 or HTTP/1.1.
pub async fn run(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()>,
    tls: Option<Tls>,
) {
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(64 * 1024);
    let builder = Arc::new(builder);
    let tls_builder = Arc::new(tls_builder());
    tokio::pin!(shutdown);
    // Connections served at once (`--max-connections`); further clients wait in the
    // kernel's accept queue, so a flood of idle connections cannot exhaust file
    // descriptors or memory. Each address gets only its share of them.
    let connections = Arc::new(tokio::sync::Semaphore::new(app.config.max_connections));
    let limits = ConnectionLimits::new(
        app.config.max_connections_per_ip,
        app.config.trust_forwarded_for,
    );
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&connections).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Typically EMFILE: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(slot) = limits.admit(remote.ip()) else {
            // Closed before reading a byte: cheaper than an answer, and the address
            // already has its share of connections to send requests on.
            tracing::debug!(client = %remote.ip(), "connection closed: per-address limit");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = Arc::clone(&app);
        let hsts = tls.is_some();
        let service = service_fn(move |req: Request<Incoming>| {
            let app = Arc::clone(&app);
            async move {
                let mut response = routes::handle(app, req, remote).await;
                if hsts {
                    tls::add_hsts(&mut response);
                }
                Ok::<_, Infallible>(response)
            }
        });
        let watcher = graceful.watcher();
        let (builder, tls_builder, tls) =
            (Arc::clone(&builder), Arc::clone(&tls_builder), tls.clone());
        tokio::spawn(async move {
            let served: Result<(), BoxError> = match tls {
                None => watcher
                    .watch(builder.serve_connection(TokioIo::new(stream), service))
                    .await
                    .map_err(Into::into),
                Some(tls) => match tls.handshake(stream).await {
                    Ok(stream) => {
                        let connection =
                            tls_builder.serve_connection(TokioIo::new(stream), service);
                        watcher.watch(connection).await
                    }
                    Err(e) => Err(e.into()),
                },
            };
            if let Err(e) = served {
                tracing::debug!(error = %e, %remote, "connection ended with an error");
            }
            drop(slot);
            drop(permit);
        });
    }
    drop(listener);
    tracing::info!("shutting down; finishing requests in flight");
    // Logins still queued for hashing are answered 503 at once instead of being hashed.
    app.hasher.close();
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(app.config.shutdown_timeout) => tracing::warn!("gave up waiting for open connections"),
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// HTTP over TLS: HTTP/2 when the client chose it by ALPN, else HTTP/1.1 with the same
/// limits as plain connections.
fn tls_builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(64 * 1024);
    builder.http2().timer(TokioTimer::new());
    builder
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// The highest iteration count among the stored password hashes (0 when none or on a
/// read error), so an unknown email costs what the strongest stored hash costs.
fn strongest_stored_hash(store: &Store) -> u32 {
    let mut strongest = 0;
    let read = store.with_conn(|conn| {
        store::users::for_each_password_hash(conn, |phc| {
            strongest = strongest.max(crate::password::iterations_of(phc).unwrap_or(0));
        })
    });
    if let Err(e) = read {
        tracing::warn!(error = %e, "could not read the stored password hashes' iteration counts");
    }
    strongest
}

/// How often the strongest stored hash is read again, so one added by the CLI while the
/// server runs soon sets the verification cost too.
const STRONGEST_HASH_REREAD: Duration = Duration::from_secs(60);

/// Keeps the verification cost up with password hashes added while serving.
async fn follow_strongest_stored_hash(app: Arc<App>) {
    loop {
        tokio::time::sleep(STRONGEST_HASH_REREAD).await;
        let store = app.store.clone();
        if let Ok(strongest) =
            tokio::task::spawn_blocking(move || strongest_stored_hash(&store)).await
        {
            app.hasher.raise_verify_cost(strongest);
        }
    }
}

/// On an empty database, says how to add the first user and client.
fn hint_when_empty(store: &Store) {
    let counts =
        store.with_conn(|conn| Ok((store::users::count(conn)?, store::clients::count(conn)?)));
    match counts {
        Ok((0, _)) | Ok((_, 0)) => tracing::warn!(
            "no users or no clients yet. Add them with: \
             `oauthd user add you@example.com` and \
             `oauthd client add --name \"My app\" --redirect-uri https://app.example.com/callback`"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not count users and clients"),
    }
}
