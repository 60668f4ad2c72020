//! souk's configuration: one typed struct, read from `souk.toml` (when given), then `SOUK_*`
//! environment variables, then command-line flags, each layer overriding the one before. Unknown keys
//! are refused; the result is validated before anything starts; secrets are redacted when shown.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The default data directory.
pub const DEFAULT_DATA_DIR: &str = "./souk-data";
/// The file (in the data dir) holding a generated admin token.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";
/// The file (in the data dir) holding a generated server secret key.
pub const SECRET_KEY_FILE: &str = "secret-key";
/// The default size limit of a CDN file: 10 MiB.
pub const DEFAULT_CDN_MAX_BYTES: u64 = 10 * 1024 * 1024;
/// The default lifetime of a CDN file: 3 days.
pub const DEFAULT_CDN_TTL_SECS: u64 = 3 * 24 * 3600;
/// The default bound on one Redis round trip (a rate-limit check, a cache read or write), in ms.
pub const DEFAULT_REDIS_TIMEOUT_MS: u64 = 50;

/// The configuration file's shape (every key optional).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Address to listen on.
    pub listen: Option<String>,
    /// Directory for the embedded database, blobs and the generated admin token.
    pub data_dir: Option<PathBuf>,
    /// The URL people and codes reach souk at.
    pub public_url: Option<String>,
    /// The admin API's bearer token.
    pub admin_token: Option<String>,
    /// The server's secret key (user pseudonyms such as the cloud gateway's `mix_nick` derive from
    /// it): the same on every node, kept across restarts.
    pub secret_key: Option<String>,
    /// Durable storage.
    #[serde(default)]
    pub database: DatabaseSection,
    /// Shared short-lived state.
    #[serde(default)]
    pub redis: RedisSection,
    /// Blob storage.
    #[serde(default)]
    pub blobs: BlobsSection,
    /// Outbound fetches of user-supplied addresses.
    #[serde(default)]
    pub fetch: FetchSection,
    /// Request limits.
    #[serde(default)]
    pub limits: LimitsSection,
    /// CDN files.
    #[serde(default)]
    pub cdn: CdnSection,
    /// Async jobs.
    #[serde(default)]
    pub jobs: JobsSection,
    /// The built-in APIs (codes, image APIs, temp media).
    #[serde(default)]
    pub builtins: BuiltinsSection,
}

/// `[blobs]`: the URL, and how to reach an S3-compatible store when it is `s3://<bucket>[/<prefix>]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlobsSection {
    /// `file://<dir>` (default `<data_dir>/blobs`) or `s3://<bucket>[/<prefix>]`.
    pub url: Option<String>,
    /// The S3 endpoint, as `https://s3.example.com` (unset: AWS S3 of the region).
    pub s3_endpoint: Option<String>,
    /// The S3 region (default `us-east-1`).
    pub s3_region: Option<String>,
    /// The S3 access key id.
    pub s3_access_key_id: Option<String>,
    /// The S3 secret access key (redacted when shown).
    pub s3_secret_access_key: Option<String>,
    /// Allow a plain-HTTP endpoint (local servers only).
    pub s3_allow_http: Option<bool>,
    /// The bound on one S3 request, in ms.
    pub s3_timeout_ms: Option<u64>,
}

/// `[database]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSection {
    /// The URL (unset: SQLite in the data dir).
    pub url: Option<String>,
    /// PostgreSQL: the longest wait for a pooled connection, connecting included, in ms.
    pub acquire_timeout_ms: Option<u64>,
    /// PostgreSQL: the longest one statement runs before the server cancels it, in ms.
    pub statement_timeout_ms: Option<u64>,
    /// PostgreSQL: the longest a transaction may sit idle before the server ends its session, in ms.
    pub idle_in_transaction_timeout_ms: Option<u64>,
}

/// `[redis]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSection {
    /// The URL (unset: shared state stays in this process).
    pub url: Option<String>,
    /// How rate limits answer while Redis cannot be asked: `open` (let calls through) or `closed`.
    pub rate_limits_when_down: Option<String>,
    /// The bound on one Redis round trip (a rate-limit check, a cache read or write), in ms.
    pub timeout_ms: Option<u64>,
}

/// `[fetch]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FetchSection {
    /// Allow loopback, private and link-local targets (local development and tests).
    pub allow_private: Option<bool>,
}

/// `[limits]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// The largest request body read, in bytes.
    pub max_body_bytes: Option<usize>,
}

/// `[cdn]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CdnSection {
    /// The largest CDN file, in bytes.
    pub max_bytes: Option<u64>,
    /// How long a CDN file is served, in seconds.
    pub ttl_secs: Option<u64>,
}

/// `[jobs]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobsSection {
    /// Async jobs run at once by this process.
    pub workers: Option<u64>,
}

/// `[builtins]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuiltinsSection {
    /// Image jobs (decode, scan, crop, upscale, code drawing) run at once; default: the cores.
    pub cpu_workers: Option<u64>,
    /// How long a job waits for a free worker before the call answers "system busy".
    pub cpu_queue_wait_ms: Option<u64>,
    /// How long a caller waits for a running job before it answers "system busy".
    pub cpu_run_ms: Option<u64>,
    /// The deadline of one `img_url` fetch.
    pub fetch_timeout_ms: Option<u64>,
    /// The most pixels an input image may have.
    pub image_max_pixels: Option<u64>,
    /// The largest input img.superresolution runs its model on (0: Lanczos3 always).
    pub superres_model_max_pixels: Option<u64>,
    /// Rate limits per built-in API and calling app, by the API's name (`img.superresolution`, ...).
    pub rate_limits: Option<std::collections::BTreeMap<String, souk_types::admin::RateLimit>>,
}

/// The built-in APIs' settings, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct BuiltinsConfig {
    /// Image jobs at once.
    pub cpu_workers: u64,
    /// Queue wait, in ms.
    pub cpu_queue_wait_ms: u64,
    /// Run time cap, in ms.
    pub cpu_run_ms: u64,
    /// `img_url` fetch deadline, in ms.
    pub fetch_timeout_ms: u64,
    /// Input pixel cap.
    pub image_max_pixels: u64,
    /// The model's input budget, in pixels.
    pub superres_model_max_pixels: u64,
    /// Rate limits by API name.
    pub rate_limits: std::collections::BTreeMap<String, souk_types::admin::RateLimit>,
}

/// Values given on the command line (highest precedence).
#[derive(Debug, Clone, Default)]
pub struct FlagConfig {
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `--listen`.
    pub listen: Option<String>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--public-url`.
    pub public_url: Option<String>,
}

/// The validated configuration souk runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Listen address.
    pub listen: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Public URL.
    pub public_url: String,
    /// Admin token, if configured (else generated in the data dir).
    pub admin_token: Option<String>,
    /// Server secret key, if configured (else generated in the data dir).
    pub secret_key: Option<String>,
    /// Durable store URL.
    pub database_url: String,
    /// Bounds on the waits for the durable store (PostgreSQL).
    pub database_settings: souk_store::StoreSettings,
    /// Redis URL (`None`: in-process shared state).
    pub redis_url: Option<String>,
    /// How rate limits answer while Redis cannot be asked.
    pub redis_when_down: souk_redis::RedisDownPolicy,
    /// The bound on one Redis round trip (a rate-limit check, a cache read or write), in ms.
    pub redis_timeout_ms: u64,
    /// Blob store URL.
    pub blob_url: String,
    /// The blob store's settings beside the URL (S3).
    pub blob_options: souk_blob::BlobOptions,
    /// Whether outbound fetches may reach private addresses.
    pub fetch_allow_private: bool,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Largest CDN file.
    pub cdn_max_bytes: u64,
    /// Lifetime of a CDN file, in seconds.
    pub cdn_ttl_secs: u64,
    /// Async jobs run at once.
    pub job_workers: u64,
    /// The built-in APIs.
    pub builtins: BuiltinsConfig,
}

/// A configuration that cannot be used, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

fn parse_bool(name: &str, text: &str) -> Result<bool, ConfigError> {
    match text {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(ConfigError(format!("{name} must be true or false, not {text:?}"))),
    }
}

fn parse_down_policy(name: &str, text: &str) -> Result<souk_redis::RedisDownPolicy, ConfigError> {
    souk_redis::RedisDownPolicy::from_name(text).ok_or_else(|| ConfigError(format!("{name} must be \"open\" or \"closed\", not {text:?}")))
}

fn parse_number(name: &str, text: &str) -> Result<u64, ConfigError> {
    text.parse()
        .map_err(|_| ConfigError(format!("{name} must be a whole number, not {text:?}")))
}

impl Config {
    /// Loads file, then environment, then flags, and validates the result.
    pub fn load(flags: &FlagConfig) -> Result<Config, ConfigError> {
        let config_path = flags.config.clone().or_else(|| env("SOUK_CONFIG").map(PathBuf::from));
        let file = match &config_path {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        Self::layer(file, flags)
    }

    fn layer(file: FileConfig, flags: &FlagConfig) -> Result<Config, ConfigError> {
        let listen = flags
            .listen
            .clone()
            .or_else(|| env("SOUK_LISTEN"))
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen: SocketAddr = listen
            .parse()
            .map_err(|_| ConfigError(format!("listen must be an address like 127.0.0.1:8080, not {listen:?}")))?;
        let data_dir = flags
            .data_dir
            .clone()
            .or_else(|| env("SOUK_DATA_DIR").map(PathBuf::from))
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let public_url = flags
            .public_url
            .clone()
            .or_else(|| env("SOUK_PUBLIC_URL"))
            .or(file.public_url)
            .unwrap_or_else(|| format!("http://{listen}"));
        let admin_token = env("SOUK_ADMIN_TOKEN").or(file.admin_token);
        let secret_key = env("SOUK_SECRET_KEY").or(file.secret_key);
        let database_settings = layer_database(&file.database)?;
        let database_url = env("SOUK_DATABASE_URL")
            .or(file.database.url)
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("souk.db").display()));
        let redis_url = env("SOUK_REDIS_URL").or(file.redis.url);
        let redis_when_down = match env("SOUK_REDIS_RATE_LIMITS_WHEN_DOWN") {
            Some(text) => parse_down_policy("SOUK_REDIS_RATE_LIMITS_WHEN_DOWN", &text)?,
            None => match &file.redis.rate_limits_when_down {
                Some(text) => parse_down_policy("redis.rate_limits_when_down", text)?,
                None => souk_redis::RedisDownPolicy::default(),
            },
        };
        let redis_timeout_ms = layered_number("SOUK_REDIS_TIMEOUT_MS", file.redis.timeout_ms, DEFAULT_REDIS_TIMEOUT_MS)?;
        let blob_options = layer_blob_options(&file.blobs)?;
        // `SOUK_BLOB_URL` is the name of earlier versions, still read.
        let blob_url = env("SOUK_BLOBS_URL")
            .or_else(|| env("SOUK_BLOB_URL"))
            .or(file.blobs.url)
            .unwrap_or_else(|| format!("file://{}", data_dir.join("blobs").display()));
        let fetch_allow_private = match env("SOUK_FETCH_ALLOW_PRIVATE") {
            Some(text) => parse_bool("SOUK_FETCH_ALLOW_PRIVATE", &text)?,
            None => file.fetch.allow_private.unwrap_or(false),
        };
        let max_body_bytes = match env("SOUK_MAX_BODY_BYTES") {
            Some(text) => text
                .parse()
                .map_err(|_| ConfigError("SOUK_MAX_BODY_BYTES must be a number of bytes".to_owned()))?,
            None => file.limits.max_body_bytes.unwrap_or(2 * 1024 * 1024),
        };
        let cdn_max_bytes = layered_number("SOUK_CDN_MAX_BYTES", file.cdn.max_bytes, DEFAULT_CDN_MAX_BYTES)?;
        let cdn_ttl_secs = layered_number("SOUK_CDN_TTL_SECS", file.cdn.ttl_secs, DEFAULT_CDN_TTL_SECS)?;
        let job_workers = layered_number("SOUK_JOB_WORKERS", file.jobs.workers, souk_core::jobs::DEFAULT_WORKERS as u64)?;
        let builtins = layer_builtins(file.builtins)?;
        let config = Config {
            listen,
            data_dir,
            public_url,
            admin_token,
            secret_key,
            database_url,
            database_settings,
            redis_url,
            redis_when_down,
            redis_timeout_ms,
            blob_url,
            blob_options,
            fetch_allow_private,
            max_body_bytes,
            cdn_max_bytes,
            cdn_ttl_secs,
            job_workers,
            builtins,
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !(self.public_url.starts_with("http://") || self.public_url.starts_with("https://")) {
            return Err(ConfigError(format!(
                "public_url must start with http:// or https://, not {:?}",
                self.public_url
            )));
        }
        let scheme = self.database_url.split("://").next().unwrap_or_default();
        if !matches!(scheme, "sqlite" | "postgres" | "postgresql") {
            return Err(ConfigError("database.url must be sqlite://<file> or postgres://...".to_owned()));
        }
        validate_database(&self.database_settings)?;
        // The URL is not quoted back: it may hold a password.
        if let Some(url) = &self.redis_url {
            if !["redis://", "redis+unix://", "unix://"]
                .iter()
                .any(|scheme| url.starts_with(scheme))
            {
                return Err(ConfigError(
                    "redis.url must be redis://[:password@]host[:port][/db] or unix:///path/to/socket".to_owned(),
                ));
            }
        }
        if !(1..=60_000).contains(&self.redis_timeout_ms) {
            return Err(ConfigError(format!(
                "redis.timeout_ms must be 1 to 60000, not {}",
                self.redis_timeout_ms
            )));
        }
        if !(100..=600_000).contains(&self.blob_options.s3.timeout.as_millis()) {
            return Err(ConfigError("blobs.s3_timeout_ms must be 100 to 600000".to_owned()));
        }
        souk_blob::check(&self.blob_url, &self.blob_options).map_err(|err| match err {
            souk_core::blob::BlobError::Backend(message) => ConfigError(message),
            other => ConfigError(other.to_string()),
        })?;
        if let Some(token) = &self.admin_token {
            if token.len() < 16 {
                return Err(ConfigError("admin_token must be at least 16 characters".to_owned()));
            }
        }
        if self.secret_key.as_ref().is_some_and(|key| key.len() < 32) {
            return Err(ConfigError("secret_key must be at least 32 characters".to_owned()));
        }
        if !(1024..=64 * 1024 * 1024).contains(&self.max_body_bytes) {
            return Err(ConfigError("limits.max_body_bytes must be 1 KiB to 64 MiB".to_owned()));
        }
        if !(1..=1024 * 1024 * 1024).contains(&self.cdn_max_bytes) {
            return Err(ConfigError("cdn.max_bytes must be 1 byte to 1 GiB".to_owned()));
        }
        if !(60..=365 * 24 * 3600).contains(&self.cdn_ttl_secs) {
            return Err(ConfigError("cdn.ttl_secs must be 60 seconds to 365 days".to_owned()));
        }
        if !(1..=1024).contains(&self.job_workers) {
            return Err(ConfigError("jobs.workers must be 1 to 1024".to_owned()));
        }
        self.builtins.validate()
    }

    /// The configuration as TOML with secrets redacted (for `--check-config` and logs).
    pub fn redacted(&self) -> String {
        let file = FileConfig {
            listen: Some(self.listen.to_string()),
            data_dir: Some(self.data_dir.clone()),
            public_url: Some(self.public_url.clone()),
            admin_token: self.admin_token.as_ref().map(|_| "***".to_owned()),
            secret_key: self.secret_key.as_ref().map(|_| "***".to_owned()),
            database: DatabaseSection {
                url: Some(redact_url(&self.database_url)),
                acquire_timeout_ms: Some(millis(self.database_settings.acquire_timeout)),
                statement_timeout_ms: Some(millis(self.database_settings.statement_timeout)),
                idle_in_transaction_timeout_ms: Some(millis(self.database_settings.idle_in_transaction_timeout)),
            },
            redis: RedisSection {
                url: self.redis_url.as_deref().map(redact_url),
                rate_limits_when_down: Some(self.redis_when_down.name().to_owned()),
                timeout_ms: Some(self.redis_timeout_ms),
            },
            blobs: self.blobs_redacted(),
            fetch: FetchSection {
                allow_private: Some(self.fetch_allow_private),
            },
            limits: LimitsSection {
                max_body_bytes: Some(self.max_body_bytes),
            },
            cdn: CdnSection {
                max_bytes: Some(self.cdn_max_bytes),
                ttl_secs: Some(self.cdn_ttl_secs),
            },
            jobs: JobsSection {
                workers: Some(self.job_workers),
            },
            builtins: BuiltinsSection {
                cpu_workers: Some(self.builtins.cpu_workers),
                cpu_queue_wait_ms: Some(self.builtins.cpu_queue_wait_ms),
                cpu_run_ms: Some(self.builtins.cpu_run_ms),
                fetch_timeout_ms: Some(self.builtins.fetch_timeout_ms),
                image_max_pixels: Some(self.builtins.image_max_pixels),
                superres_model_max_pixels: Some(self.builtins.superres_model_max_pixels),
                rate_limits: Some(self.builtins.rate_limits.clone()).filter(|limits| !limits.is_empty()),
            },
        };
        toml::to_string(&file).unwrap_or_default()
    }
}

impl Config {
    /// `[blobs]` as shown: the secret access key as `***`, S3 settings only for an `s3://` URL.
    fn blobs_redacted(&self) -> BlobsSection {
        let s3 = &self.blob_options.s3;
        let is_s3 = self.blob_url.starts_with("s3://");
        BlobsSection {
            url: Some(redact_url(&self.blob_url)),
            s3_endpoint: s3.endpoint.clone(),
            s3_region: s3.region.clone(),
            s3_access_key_id: s3.access_key_id.clone(),
            s3_secret_access_key: s3.secret_access_key.as_ref().map(|_| "***".to_owned()),
            s3_allow_http: Some(s3.allow_http).filter(|_| is_s3),
            s3_timeout_ms: u64::try_from(s3.timeout.as_millis()).ok().filter(|_| is_s3),
        }
    }
}

/// `[blobs]`'s S3 settings, each from `SOUK_BLOBS_S3_*`, then the file.
fn layer_blob_options(file: &BlobsSection) -> Result<souk_blob::BlobOptions, ConfigError> {
    let text = |env_name: &str, file: &Option<String>| env(env_name).or_else(|| file.clone());
    let allow_http = match env("SOUK_BLOBS_S3_ALLOW_HTTP") {
        Some(text) => parse_bool("SOUK_BLOBS_S3_ALLOW_HTTP", &text)?,
        None => file.s3_allow_http.unwrap_or(false),
    };
    let timeout_ms = layered_number(
        "SOUK_BLOBS_S3_TIMEOUT_MS",
        file.s3_timeout_ms,
        souk_blob::DEFAULT_S3_TIMEOUT.as_secs() * 1000,
    )?;
    Ok(souk_blob::BlobOptions {
        s3: souk_blob::S3Options {
            endpoint: text("SOUK_BLOBS_S3_ENDPOINT", &file.s3_endpoint),
            region: text("SOUK_BLOBS_S3_REGION", &file.s3_region),
            access_key_id: text("SOUK_BLOBS_S3_ACCESS_KEY_ID", &file.s3_access_key_id),
            secret_access_key: text("SOUK_BLOBS_S3_SECRET_ACCESS_KEY", &file.s3_secret_access_key),
            allow_http,
            timeout: std::time::Duration::from_millis(timeout_ms),
            ..souk_blob::S3Options::default()
        },
    })
}

/// `url` with its user and password replaced by `***`, for logs and `--check-config`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => format!("{}://***@{}", &url[..scheme_end], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

/// One number setting: its `SOUK_*` variable, then the file, then the default.
fn layered_number(env_name: &str, file: Option<u64>, default: u64) -> Result<u64, ConfigError> {
    match env(env_name) {
        Some(text) => parse_number(env_name, &text),
        None => Ok(file.unwrap_or(default)),
    }
}

/// `[database]`'s bounds, each from `SOUK_DATABASE_*`, then the file, then souk-store's default.
fn layer_database(file: &DatabaseSection) -> Result<souk_store::StoreSettings, ConfigError> {
    use souk_store::StoreSettings as S;
    let layered = |env_name: &str, file: Option<u64>, default: std::time::Duration| {
        layered_number(env_name, file, millis(default)).map(std::time::Duration::from_millis)
    };
    Ok(S {
        acquire_timeout: layered(
            "SOUK_DATABASE_ACQUIRE_TIMEOUT_MS",
            file.acquire_timeout_ms,
            S::DEFAULT_ACQUIRE_TIMEOUT,
        )?,
        statement_timeout: layered(
            "SOUK_DATABASE_STATEMENT_TIMEOUT_MS",
            file.statement_timeout_ms,
            S::DEFAULT_STATEMENT_TIMEOUT,
        )?,
        idle_in_transaction_timeout: layered(
            "SOUK_DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS",
            file.idle_in_transaction_timeout_ms,
            S::DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT,
        )?,
    })
}

/// Every bound is required (PostgreSQL reads 0 as "no timeout") and at most an hour; a connection
/// wait of more than a minute would hold calls as the unbounded one did.
fn validate_database(settings: &souk_store::StoreSettings) -> Result<(), ConfigError> {
    for (name, value, range) in [
        ("database.acquire_timeout_ms", settings.acquire_timeout, 100..=60_000),
        ("database.statement_timeout_ms", settings.statement_timeout, 100..=3_600_000),
        (
            "database.idle_in_transaction_timeout_ms",
            settings.idle_in_transaction_timeout,
            1_000..=3_600_000,
        ),
    ] {
        if !range.contains(&millis(value)) {
            return Err(ConfigError(format!(
                "{name} must be {} to {}, not {}",
                range.start(),
                range.end(),
                millis(value)
            )));
        }
    }
    Ok(())
}

#[allow(clippy::cast_possible_truncation, reason = "configured durations are far below u64::MAX ms")]
fn millis(duration: std::time::Duration) -> u64 {
    duration.as_millis() as u64
}

fn layer_builtins(file: BuiltinsSection) -> Result<BuiltinsConfig, ConfigError> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get) as u64;
    Ok(BuiltinsConfig {
        cpu_workers: layered_number("SOUK_CPU_WORKERS", file.cpu_workers, cores)?,
        cpu_queue_wait_ms: layered_number("SOUK_CPU_QUEUE_WAIT_MS", file.cpu_queue_wait_ms, 2_000)?,
        cpu_run_ms: layered_number("SOUK_CPU_RUN_MS", file.cpu_run_ms, 10_000)?,
        fetch_timeout_ms: layered_number("SOUK_FETCH_TIMEOUT_MS", file.fetch_timeout_ms, 10_000)?,
        image_max_pixels: layered_number(
            "SOUK_IMAGE_MAX_PIXELS",
            file.image_max_pixels,
            souk_builtins::image_input::MAX_PIXELS,
        )?,
        superres_model_max_pixels: layered_number(
            "SOUK_SUPERRES_MODEL_MAX_PIXELS",
            file.superres_model_max_pixels,
            souk_builtins::superres::DEFAULT_MODEL_MAX_PIXELS,
        )?,
        rate_limits: file.rate_limits.unwrap_or_default(),
    })
}

impl BuiltinsConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let bounded = |name: &str, value: u64, range: std::ops::RangeInclusive<u64>| {
            if range.contains(&value) {
                Ok(())
            } else {
                Err(ConfigError(format!(
                    "builtins.{name} must be {} to {}, not {value}",
                    range.start(),
                    range.end()
                )))
            }
        };
        bounded("cpu_workers", self.cpu_workers, 1..=256)?;
        bounded("cpu_queue_wait_ms", self.cpu_queue_wait_ms, 0..=60_000)?;
        bounded("cpu_run_ms", self.cpu_run_ms, 100..=600_000)?;
        bounded("fetch_timeout_ms", self.fetch_timeout_ms, 100..=60_000)?;
        bounded("image_max_pixels", self.image_max_pixels, 1..=100_000_000)?;
        bounded(
            "superres_model_max_pixels",
            self.superres_model_max_pixels,
            0..=souk_builtins::superres::MAX_INPUT_PIXELS,
        )?;
        for (name, limit) in &self.rate_limits {
            if souk_core::builtin::BuiltinApi::from_name(name).is_none() {
                let known: Vec<&str> = souk_core::builtin::BuiltinApi::ALL.iter().map(|api| api.name()).collect();
                return Err(ConfigError(format!(
                    "builtins.rate_limits has an unknown api {name:?}; known: {}",
                    known.join(", ")
                )));
            }
            if !(limit.per_second.is_finite() && limit.per_second > 0.0) || limit.burst == 0 {
                return Err(ConfigError(format!(
                    "builtins.rate_limits.{name:?} needs per_second > 0 and burst >= 1"
                )));
            }
        }
        Ok(())
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|err| ConfigError(format!("cannot read {}: {err}", path.display())))?;
    toml::from_str(&text).map_err(|err| ConfigError(format!("{}: {err}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_embedded_ones() {
        let config = Config::layer(FileConfig::default(), &FlagConfig::default()).unwrap();
        assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
        assert!(config.database_url.starts_with("sqlite://"));
        assert!(config.blob_url.starts_with("file://"));
        assert_eq!(config.public_url, "http://127.0.0.1:8080");
    }

    #[test]
    fn blobs_on_s3_are_checked_and_the_secret_redacted() {
        let text = "[blobs]\nurl = \"s3://souk-blobs/prod\"\ns3_endpoint = \"http://127.0.0.1:9000\"\ns3_region = \"garage\"\n\
                    s3_access_key_id = \"GK123\"\ns3_secret_access_key = \"very-secret-key-0001\"\ns3_allow_http = true\n\
                    s3_timeout_ms = 5000\n";
        let config = Config::layer(toml::from_str(text).unwrap(), &FlagConfig::default()).unwrap();
        assert_eq!(config.blob_url, "s3://souk-blobs/prod");
        let s3 = &config.blob_options.s3;
        assert_eq!(s3.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!((s3.region.as_deref(), s3.access_key_id.as_deref()), (Some("garage"), Some("GK123")));
        assert_eq!(s3.secret_access_key.as_deref(), Some("very-secret-key-0001"));
        assert!(s3.allow_http);
        assert_eq!(s3.timeout, std::time::Duration::from_millis(5000));
        let shown = config.redacted();
        assert!(!shown.contains("very-secret-key-0001"), "{shown}");
        assert!(shown.contains("s3_secret_access_key = \"***\""), "{shown}");
        assert!(!format!("{config:?}").contains("very-secret-key-0001"));
        let again = Config::layer(toml::from_str(&shown).unwrap(), &FlagConfig::default()).unwrap();
        assert_eq!(again.blob_url, config.blob_url, "{shown}");

        let default = Config::layer(FileConfig::default(), &FlagConfig::default()).unwrap().redacted();
        assert!(!default.contains("s3_"), "no S3 settings shown for a folder: {default}");

        for (bad, expected) in [
            ("[blobs]\nurl = \"s3://souk-blobs\"", "blobs.s3_access_key_id"),
            (
                "[blobs]\nurl = \"s3://Bad_Bucket\"\ns3_access_key_id = \"a\"\ns3_secret_access_key = \"b\"",
                "bucket",
            ),
            (
                "[blobs]\nurl = \"s3://b-1/x\"\ns3_endpoint = \"http://h:1\"\ns3_access_key_id = \"a\"\ns3_secret_access_key = \"b\"",
                "blobs.s3_allow_http",
            ),
            ("[blobs]\nurl = \"s3://b-1\"\ns3_access_key_id = \"a\"", "together"),
            (
                "[blobs]\nurl = \"s3://b-1\"\ns3_access_key_id = \"a\"\ns3_secret_access_key = \"b\"\ns3_timeout_ms = 0",
                "s3_timeout_ms",
            ),
            ("[blobs]\ns3_endpoint = \"https://s3.example.com\"", "not s3://"),
            ("[blobs]\nurl = \"gs://bucket\"", "s3://"),
        ] {
            let error = Config::layer(toml::from_str(bad).unwrap(), &FlagConfig::default()).unwrap_err().0;
            assert!(error.contains(expected), "{bad}: {error}");
        }
        assert!(
            toml::from_str::<FileConfig>("[blobs]\ns3_bucket = \"x\"").is_err(),
            "unknown keys are refused"
        );
    }

    #[test]
    fn flags_win_over_the_file() {
        let file: FileConfig = toml::from_str("listen = \"127.0.0.1:1\"\n[database]\nurl = \"postgres://u:pw@h/db\"\n").unwrap();
        let flags = FlagConfig {
            listen: Some("127.0.0.1:2".into()),
            ..FlagConfig::default()
        };
        let config = Config::layer(file, &flags).unwrap();
        assert_eq!(config.listen.port(), 2);
        assert!(config.redacted().contains("postgres://***@h/db"), "{}", config.redacted());
        assert!(!config.redacted().contains("pw"));
    }

    #[test]
    fn cdn_settings_have_defaults_and_bounds() {
        let config = Config::layer(FileConfig::default(), &FlagConfig::default()).unwrap();
        assert_eq!((config.cdn_max_bytes, config.cdn_ttl_secs), (10 * 1024 * 1024, 259_200));
        let file: FileConfig = toml::from_str("[cdn]\nmax_bytes = 2048\nttl_secs = 3600\n").unwrap();
        let config = Config::layer(file, &FlagConfig::default()).unwrap();
        assert_eq!((config.cdn_max_bytes, config.cdn_ttl_secs), (2048, 3600));
        assert!(
            config.redacted().contains("[cdn]\nmax_bytes = 2048\nttl_secs = 3600"),
            "{}",
            config.redacted()
        );
        for bad in [
            "[cdn]\nmax_bytes = 0",
            "[cdn]\nttl_secs = 59",
            "[cdn]\nttl_secs = 99999999",
            "[cdn]\nmax_size = 1",
        ] {
            let refused = toml::from_str::<FileConfig>(bad).map_or(true, |file| Config::layer(file, &FlagConfig::default()).is_err());
            assert!(refused, "{bad}");
        }
    }

    #[test]
    fn database_bounds_have_defaults_file_values_and_limits() {
        let config = Config::layer(FileConfig::default(), &FlagConfig::default()).unwrap();
        assert_eq!(config.database_settings, souk_store::StoreSettings::default());
        let file: FileConfig = toml::from_str(
            "[database]\nurl = \"postgres://h/db\"\nacquire_timeout_ms = 1500\nstatement_timeout_ms = 800\nidle_in_transaction_timeout_ms = 4000\n",
        )
        .unwrap();
        let config = Config::layer(file, &FlagConfig::default()).unwrap();
        let settings = config.database_settings;
        assert_eq!(settings.acquire_timeout, std::time::Duration::from_millis(1500));
        assert_eq!(settings.statement_timeout, std::time::Duration::from_millis(800));
        assert_eq!(settings.idle_in_transaction_timeout, std::time::Duration::from_millis(4000));
        let shown = config.redacted();
        assert!(
            shown.contains("acquire_timeout_ms = 1500\nstatement_timeout_ms = 800\nidle_in_transaction_timeout_ms = 4000"),
            "{shown}"
        );
        for bad in [
            "[database]\nacquire_timeout_ms = 0",
            "[database]\nacquire_timeout_ms = 60001",
            "[database]\nstatement_timeout_ms = 0",
            "[database]\nidle_in_transaction_timeout_ms = 999",
            "[database]\nstatement_timeout = 5",
        ] {
            let refused = toml::from_str::<FileConfig>(bad).map_or(true, |file| Config::layer(file, &FlagConfig::default()).is_err());
            assert!(refused, "{bad}");
        }
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert!(toml::from_str::<FileConfig>("lisen = \"x\"").is_err());
        assert!(toml::from_str::<FileConfig>("[database]\nurls = \"x\"").is_err());
        let file: FileConfig = toml::from_str("[database]\nurl = \"mysql://x\"").unwrap();
        assert!(Config::layer(file, &FlagConfig::default()).is_err());
        let flags = FlagConfig {
            listen: Some("nonsense".into()),
            ..FlagConfig::default()
        };
        assert!(Config::layer(FileConfig::default(), &flags).is_err());
    }

    #[test]
    fn secret_keys_are_long_and_redacted() {
        let file: FileConfig = toml::from_str("secret_key = \"short\"").unwrap();
        assert!(Config::layer(file, &FlagConfig::default()).is_err());
        let key = "k".repeat(32);
        let file: FileConfig = toml::from_str(&format!("secret_key = \"{key}\"")).unwrap();
        let config = Config::layer(file, &FlagConfig::default()).unwrap();
        assert_eq!(config.secret_key.as_deref(), Some(key.as_str()));
        assert!(!config.redacted().contains(&key), "{}", config.redacted());
    }

    #[test]
    fn redis_settings_have_defaults_bounds_and_a_redacted_url() {
        let config = Config::layer(FileConfig::default(), &FlagConfig::default()).unwrap();
        assert_eq!(config.redis_url, None);
        assert_eq!(config.redis_when_down, souk_redis::RedisDownPolicy::FailOpen);
        assert_eq!(config.redis_timeout_ms, DEFAULT_REDIS_TIMEOUT_MS);
        let text = "[redis]\nurl = \"redis://:hunter2@cache:6379/0\"\nrate_limits_when_down = \"closed\"\ntimeout_ms = 20\n";
        let config = Config::layer(toml::from_str(text).unwrap(), &FlagConfig::default()).unwrap();
        assert_eq!(config.redis_url.as_deref(), Some("redis://:hunter2@cache:6379/0"));
        assert_eq!(config.redis_when_down, souk_redis::RedisDownPolicy::FailClosed);
        assert_eq!(config.redis_timeout_ms, 20);
        let shown = config.redacted();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("[redis]\nurl = \"redis://***@cache:6379/0\"\nrate_limits_when_down = \"closed\"\ntimeout_ms = 20"),
            "{shown}"
        );
        for (bad, key) in [
            ("[redis]\nrate_limits_when_down = \"maybe\"", "redis.rate_limits_when_down"),
            ("[redis]\ntimeout_ms = 0", "redis.timeout_ms"),
            ("[redis]\ntimeout_ms = 60001", "redis.timeout_ms"),
            ("[redis]\nurl = \"http://:hunter2@cache/\"", "redis.url"),
        ] {
            let error = Config::layer(toml::from_str(bad).unwrap(), &FlagConfig::default()).unwrap_err().0;
            assert!(error.contains(key) && !error.contains("hunter2"), "{bad}: {error}");
        }
        assert!(toml::from_str::<FileConfig>("[redis]\ntimeout = 5").is_err());
        let error = parse_down_policy("SOUK_REDIS_RATE_LIMITS_WHEN_DOWN", "shut").unwrap_err().0;
        assert!(error.contains("SOUK_REDIS_RATE_LIMITS_WHEN_DOWN"), "{error}");
    }

    #[test]
    fn job_workers_have_a_default_and_bounds() {
        let config = Config::layer(FileConfig::default(), &FlagConfig::default()).unwrap();
        assert_eq!(config.job_workers, 16);
        let file: FileConfig = toml::from_str("[jobs]\nworkers = 4\n").unwrap();
        let config = Config::layer(file, &FlagConfig::default()).unwrap();
        assert_eq!(config.job_workers, 4);
        assert!(config.redacted().contains("[jobs]\nworkers = 4"), "{}", config.redacted());
        for bad in ["[jobs]\nworkers = 0", "[jobs]\nworkers = 5000"] {
            let file: FileConfig = toml::from_str(bad).unwrap();
            assert!(Config::layer(file, &FlagConfig::default()).is_err(), "{bad}");
        }
        assert!(toml::from_str::<FileConfig>("[jobs]\nthreads = 1").is_err());
    }

    #[test]
    fn builtin_settings_have_defaults_bounds_and_known_names() {
        let config = Config::layer(FileConfig::default(), &FlagConfig::default()).unwrap();
        assert_eq!(config.builtins.cpu_run_ms, 10_000);
        assert_eq!(config.builtins.superres_model_max_pixels, 384 * 384);
        assert!(config.builtins.rate_limits.is_empty());
        let text = "[builtins]\ncpu_workers = 3\nsuperres_model_max_pixels = 0\n\
                    [builtins.rate_limits.\"img.superresolution\"]\nper_second = 0.5\nburst = 2\n";
        let config = Config::layer(toml::from_str(text).unwrap(), &FlagConfig::default()).unwrap();
        assert_eq!((config.builtins.cpu_workers, config.builtins.superres_model_max_pixels), (3, 0));
        assert_eq!(config.builtins.rate_limits["img.superresolution"].burst, 2);
        let shown = config.redacted();
        let again = Config::layer(toml::from_str(&shown).unwrap(), &FlagConfig::default()).unwrap();
        assert_eq!(again.builtins, config.builtins, "{shown}");
        for bad in [
            "[builtins]\ncpu_workers = 0",
            "[builtins]\ncpu_run_ms = 1",
            "[builtins]\nimage_max_pixels = 0",
            "[builtins]\nsuperres_model_max_pixels = 99999999",
            "[builtins.rate_limits.\"img.scanqrcode\"]\nper_second = 1\nburst = 1",
            "[builtins.rate_limits.\"img.aiCrop\"]\nper_second = 0\nburst = 1",
            "[builtins]\nthreads = 1",
        ] {
            let refused = toml::from_str::<FileConfig>(bad).map_or(true, |file| Config::layer(file, &FlagConfig::default()).is_err());
            assert!(refused, "{bad}");
        }
    }
}
