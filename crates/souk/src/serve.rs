//! `souk serve`: open the stores (migrating them), start the call-log writer, housekeeping and the async
//! job workers, listen, and shut down gracefully on Ctrl-C or SIGTERM, writing out the call log before
//! exiting.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use souk_core::calllog::CallLogWriter;
use souk_core::cdn::CdnSettings;
use souk_core::clock::SystemClock;
use souk_core::ratelimit::{LocalRateLimiter, RateLimiter};
use souk_core::Souk;
use souk_server::cloud_transport::GuardedTransport;
use souk_server::upstream::HttpTransport;
use souk_server::{AppState, ServerSettings};

use crate::config::{Config, ADMIN_TOKEN_FILE, SECRET_KEY_FILE};

/// How long a stopping server waits for the call log to reach the store.
const SHUTDOWN_CALL_LOG_WAIT: Duration = Duration::from_secs(20);
/// How long shutdown waits for the commits of calls already answered ([`souk_core::settling`]):
/// each is one settlement batch, bounded by the store's own timeouts.
const SHUTDOWN_COMMIT_WAIT: Duration = Duration::from_secs(10);

/// Runs the server until it is told to stop.
pub async fn serve(config: Config, migrations: souk_store::Migrations) -> Result<(), String> {
    std::fs::create_dir_all(&config.data_dir).map_err(|err| format!("cannot create data dir {}: {err}", config.data_dir.display()))?;
    if let Some(dir) = config.blob_url.strip_prefix("file://") {
        std::fs::create_dir_all(dir).map_err(|err| format!("cannot create blob dir {dir}: {err}"))?;
    }
    let admin_token = admin_token(&config)?;
    let secret_key = secret_key(&config)?;
    let store = souk_store::open_with_settings(&config.database_url, migrations, config.database_settings)
        .await
        .map_err(|err| format!("cannot open the database: {err}"))?;
    tracing::info!(backend = store.backend(), "database ready");
    let (call_log, call_log_task) = CallLogWriter::start(store.clone());
    let transport = HttpTransport::new()?;
    // The cloud gateway calls addresses pages name: guarded unless the operator allows private ones.
    let cloud_transport = GuardedTransport::new(config.fetch_allow_private)?;
    let blobs = souk_blob::open_with(&config.blob_url, &config.blob_options).map_err(|err| format!("cannot open the blob store: {err}"))?;
    tracing::info!(backend = blobs.backend(), "blob store ready");
    let redis = redis_roles(&config).await?;
    let mut souk = Souk::new(store, Arc::new(SystemClock), Arc::new(transport), redis.rate_limiter, call_log)
        .with_cdn(cdn_settings(&config), blobs)
        .with_cloud_transport(Arc::new(cloud_transport))
        .with_secret_key(secret_key.as_bytes())
        .with_codes(souk_core::wxacode::CodeSettings::new(config.public_url.clone()))
        .with_builtin_limits(builtin_limits(&config));
    if let Some((cache, signals)) = redis.shared {
        souk = souk.with_response_cache(cache).with_signals(signals);
    }
    let souk = Arc::new(souk);
    let signal_listener = souk.start_signal_listener();
    let housekeeping = tokio::spawn(housekeeping(souk.clone()));
    // Async jobs: pending ones left by an earlier run are claimed as soon as their leases lapse.
    let job_workers = souk.start_job_workers(souk_core::jobs::JobWorkerSettings {
        workers: usize::try_from(config.job_workers).unwrap_or(souk_core::jobs::DEFAULT_WORKERS),
        ..souk_core::jobs::JobWorkerSettings::default()
    });
    let settings = ServerSettings {
        admin_token,
        max_body_bytes: config.max_body_bytes,
    };
    let state = AppState::new(souk.clone(), settings)
        .with_builtins(builtin_settings(&config))
        .with_image_fetch(config.fetch_allow_private);
    let router = souk_server::app(state);

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|err| format!("cannot listen on {}: {err}", config.listen))?;
    let address = listener.local_addr().map_err(|err| err.to_string())?;
    println!("souk listening on http://{address} (data in {})", config.data_dir.display());
    axum::serve(listener, router)
        .with_graceful_shutdown({
            let souk = souk.clone();
            async move {
                shutdown_signal().await;
                // Open message streams would hold the graceful shutdown for their whole life.
                souk.close_message_streams();
            }
        })
        .await
        .map_err(|err| format!("server error: {err}"))?;

    // Successful calls answered just before the signal may still be committing.
    let pending_at_stop = souk.pending_commits().len();
    if tokio::time::timeout(SHUTDOWN_COMMIT_WAIT, souk.pending_commits().settled_through_now())
        .await
        .is_err()
    {
        tracing::error!(
            waited_secs = SHUTDOWN_COMMIT_WAIT.as_secs(),
            pending_at_stop,
            still_pending = souk.pending_commits().len(),
            "shutting down: calls' commits did not finish in time; the reaper will release those reservations (the calls go uncharged)"
        );
    }
    tracing::info!("shutting down: writing the call log");
    housekeeping.abort();
    if let Some(listener) = signal_listener {
        listener.abort();
    }
    // Jobs in flight are abandoned; their leases lapse and the next run (or another node) takes them.
    job_workers.abort();
    // Bounded: with the store down, the writer's retries would otherwise outlast any service
    // manager's stop timeout.
    let written = tokio::time::timeout(SHUTDOWN_CALL_LOG_WAIT, async move {
        souk.call_log().flush().await;
        drop(souk);
        let _ = call_log_task.await;
    })
    .await;
    if written.is_err() {
        tracing::error!(
            waited_secs = SHUTDOWN_CALL_LOG_WAIT.as_secs(),
            "shutting down: the call log could not be written in time; the records still queued are lost"
        );
    }
    Ok(())
}

/// What Redis shares between nodes when `redis.url` is set: rate limits, the cloud gateway's
/// response cache and cross-node signals, all on one multiplexed connection (the signals' subscription
/// adds one pub/sub connection). Without Redis, rate limits and the cache live in this process and
/// there are no signals. An unreachable Redis does not stop the start: rate limits follow
/// `redis.rate_limits_when_down`, the cache is bypassed and signals resume (with a resync) when it
/// answers (see `souk_redis`).
struct RedisRoles {
    rate_limiter: Arc<dyn RateLimiter>,
    shared: Option<(Arc<souk_redis::RedisResponseCache>, Arc<souk_redis::RedisSignals>)>,
}

async fn redis_roles(config: &Config) -> Result<RedisRoles, String> {
    let Some(url) = &config.redis_url else {
        return Ok(RedisRoles {
            rate_limiter: Arc::new(LocalRateLimiter::new()),
            shared: None,
        });
    };
    let settings = souk_redis::RedisSettings {
        when_down: config.redis_when_down,
        timeout: Duration::from_millis(config.redis_timeout_ms),
        ..souk_redis::RedisSettings::default()
    };
    let connection = souk_redis::RedisConnection::connect(url, settings)
        .await
        .map_err(|err| format!("cannot use redis.url {}: {err}", crate::config::redact_url(url)))?;
    tracing::info!(
        url = %crate::config::redact_url(url),
        when_down = config.redis_when_down.name(),
        timeout_ms = config.redis_timeout_ms,
        "rate limits, the response cache and signals shared through redis"
    );
    Ok(RedisRoles {
        rate_limiter: Arc::new(souk_redis::RedisRateLimiter::new(connection.clone())),
        shared: Some((
            Arc::new(souk_redis::RedisResponseCache::new(connection.clone())),
            Arc::new(souk_redis::RedisSignals::new(connection)),
        )),
    })
}

fn cdn_settings(config: &Config) -> CdnSettings {
    CdnSettings {
        public_url: config.public_url.clone(),
        max_bytes: config.cdn_max_bytes,
        ttl_ms: i64::try_from(config.cdn_ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
    }
}

/// The configured admin token, or the one kept in the data dir (made on first start).
fn admin_token(config: &Config) -> Result<String, String> {
    if let Some(token) = &config.admin_token {
        return Ok(token.clone());
    }
    let path = config.data_dir.join(ADMIN_TOKEN_FILE);
    if let Ok(text) = std::fs::read_to_string(&path) {
        let token = text.trim().to_owned();
        if !token.is_empty() {
            println!("admin token: read from {}", path.display());
            return Ok(token);
        }
    }
    let mut bytes = [0u8; 24];
    rand::rng().fill(&mut bytes);
    let token = hex::encode(bytes);
    write_private(&path, &token).map_err(|err| format!("cannot write the admin token to {}: {err}", path.display()))?;
    println!("admin token: generated and stored in {}", path.display());
    Ok(token)
}

/// The configured server secret key, or the one kept in the data dir (made on first start). It must
/// not change: user pseudonyms (`mix_nick`) derive from it. Several nodes must be given the same one.
fn secret_key(config: &Config) -> Result<String, String> {
    if let Some(key) = &config.secret_key {
        return Ok(key.clone());
    }
    let path = config.data_dir.join(SECRET_KEY_FILE);
    if let Ok(text) = std::fs::read_to_string(&path) {
        let key = text.trim().to_owned();
        if !key.is_empty() {
            return Ok(key);
        }
    }
    let mut bytes = [0u8; 32];
    rand::rng().fill(&mut bytes);
    let key = hex::encode(bytes);
    write_private(&path, &key).map_err(|err| format!("cannot write the secret key to {}: {err}", path.display()))?;
    println!("secret key: generated and stored in {}", path.display());
    Ok(key)
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")
}

async fn housekeeping(souk: Arc<Souk>) {
    loop {
        souk.run_maintenance().await;
        tokio::time::sleep(souk_core::maintenance::PERIOD).await;
    }
}

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

/// The built-in APIs' HTTP-side settings from `[builtins]`.
fn builtin_settings(config: &Config) -> souk_server::BuiltinSettings {
    let builtins = &config.builtins;
    souk_server::BuiltinSettings {
        pool: souk_builtins::pool::PoolLimits {
            workers: usize::try_from(builtins.cpu_workers).unwrap_or(1),
            queue_wait: Duration::from_millis(builtins.cpu_queue_wait_ms),
            run_time: Duration::from_millis(builtins.cpu_run_ms),
        },
        fetch_timeout: Duration::from_millis(builtins.fetch_timeout_ms),
        image_max_pixels: builtins.image_max_pixels,
        superres_model_max_pixels: builtins.superres_model_max_pixels,
    }
}

/// The operator's rate limits on built-in APIs (names checked when the config was loaded).
fn builtin_limits(config: &Config) -> souk_core::builtin::BuiltinLimits {
    config
        .builtins
        .rate_limits
        .iter()
        .filter_map(|(name, limit)| Some((souk_core::builtin::BuiltinApi::from_name(name)?, *limit)))
        .fold(souk_core::builtin::BuiltinLimits::new(), |limits, (api, limit)| {
            limits.with(api, limit)
        })
}
