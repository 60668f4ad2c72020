//! The PostgreSQL backend, for several souk nodes sharing one database.
//!
//! Exactness comes from the database alone: conditional updates re-checked under row locks (READ
//! COMMITTED), `INSERT ... ON CONFLICT DO NOTHING` for idempotency keys, and transaction-scoped
//! advisory locks where a read-then-write must serialize (token rotation, reaping). Migrations run
//! under sqlx's migrator, which holds a session advisory lock (`pg_advisory_lock`, keyed by the
//! database name) for the whole run, so nodes starting together migrate one at a time.
//!
//! Every wait is bounded ([`crate::StoreSettings`]): a connection is acquired (connecting
//! included) within `acquire_timeout`; each pooled session starts with `statement_timeout`,
//! `idle_in_transaction_session_timeout` and TCP keepalives on the server's side; the ledger batches
//! ([`ledger`]) and [`DurableStore::ping`] also bound their statements on this side, for a server
//! that answers nothing at all. Migrations run on a connection of their own without a statement
//! timeout: a schema change may take longer than any call.
//!
//! The statements both backends run are written once in [`crate::shared`]; each file here invokes
//! its area's macro with the one pool and hand-writes only what is PostgreSQL's own.

use std::time::Duration;

use async_trait::async_trait;
use souk_core::store::{DurableStore, StoreError};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{Connection, Postgres, Transaction};

use crate::StoreSettings;

mod calls;
mod cdn;
mod clients;
mod cloud;
mod codes;
mod jobs;
mod ledger;
mod media;
mod messages;
mod payments;
mod registry;
mod tokens;

const BACKEND: &str = "postgres";
/// Connections per node: enough for a burst of concurrent reservations queueing on one package.
const MAX_CONNECTIONS: u32 = 20;
/// A pooled connection idle at least this long is pinged before it is handed out; one used more
/// recently was pinged when it came back to the pool.
const RECHECK_IDLE: Duration = Duration::from_secs(1);
/// How long this side waits for a statement beyond the server's `statement_timeout`: the server
/// cancels first and answers 57014 on a healthy connection; only a server or network that answers
/// nothing reaches this bound, and that connection is then closed.
const CLIENT_GRACE: Duration = Duration::from_secs(1);
/// Server-side TCP keepalives of each session (idle seconds, interval seconds, probes): PostgreSQL
/// notices a vanished node within about a minute and rolls its open transaction back.
const KEEPALIVES: [(&str, &str); 3] = [
    ("tcp_keepalives_idle", "30"),
    ("tcp_keepalives_interval", "10"),
    ("tcp_keepalives_count", "3"),
];

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The durable store on a PostgreSQL database (`postgres://...` or `postgresql://...`).
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// The queues of this node's ledger batches.
    batches: ledger::Batches,
    /// This side's bound on one statement it watches itself (`statement_timeout` + [`CLIENT_GRACE`]).
    statement_bound: Duration,
}

impl PgStore {
    /// Connects to the database named by `url` and brings its schema up to date.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, crate::Migrations::Apply).await
    }

    /// [`PgStore::connect`], with a choice about migrations ([`crate::Migrations`]).
    pub async fn connect_with(url: &str, migrations: crate::Migrations) -> Result<Self, StoreError> {
        Self::connect_with_settings(url, migrations, StoreSettings::default()).await
    }

    /// [`PgStore::connect_with`], with bounds on the waits for the database.
    pub async fn connect_with_settings(url: &str, migrations: crate::Migrations, settings: StoreSettings) -> Result<Self, StoreError> {
        let options: PgConnectOptions = url.parse().map_err(from_sqlx)?;
        if migrations == crate::Migrations::Apply {
            migrate(&options, settings.acquire_timeout).await?;
        }
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            // The pool pings every connection it gets back; pinging it again on the way out
            // (sqlx's default) is one more round trip per store call on the hot path, worth it
            // only for a connection that has sat idle since.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= RECHECK_IDLE {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .acquire_timeout(settings.acquire_timeout)
            .connect_with(bounded_sessions(options, &settings))
            .await
            .map_err(from_sqlx)?;
        if migrations == crate::Migrations::Require {
            if let Err(err) = require_current(&pool).await {
                pool.close().await;
                return Err(err);
            }
        }
        tracing::debug!(backend = BACKEND, "store open, schema current");
        let statement_bound = settings.statement_timeout + CLIENT_GRACE;
        let batches = ledger::Batches::start(&pool, settings.acquire_timeout, statement_bound);
        Ok(PgStore {
            pool,
            batches,
            statement_bound,
        })
    }

    /// Starts a transaction.
    async fn begin(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        self.pool.begin().await.map_err(from_sqlx)
    }
}

/// This backend's migrations.
pub(crate) fn migrator() -> &'static sqlx::migrate::Migrator {
    &MIGRATOR
}

/// Every pooled session's bounds, as startup parameters (no extra round trip per connection).
fn bounded_sessions(options: PgConnectOptions, settings: &StoreSettings) -> PgConnectOptions {
    let ms = |duration: Duration| duration.as_millis().max(1).to_string();
    let mut params = vec![
        ("statement_timeout", ms(settings.statement_timeout)),
        ("idle_in_transaction_session_timeout", ms(settings.idle_in_transaction_timeout)),
    ];
    params.extend(KEEPALIVES.iter().map(|(name, value)| (*name, (*value).to_owned())));
    options.options(params)
}

/// Applies the pending migrations on a connection of their own, without a statement timeout.
/// Connecting is bounded; the migrations are not. Closing the connection ends the session, and with
/// it the migrator's advisory lock, whatever happened.
async fn migrate(options: &PgConnectOptions, connect_timeout: Duration) -> Result<(), StoreError> {
    let mut conn = match tokio::time::timeout(connect_timeout, PgConnection::connect_with(options)).await {
        Ok(conn) => conn.map_err(from_sqlx)?,
        Err(_) => return Err(timed_out("connecting", connect_timeout)),
    };
    let applied = MIGRATOR.run_direct(&mut conn).await;
    let _ = conn.close().await;
    applied.map_err(|err| crate::error::migrate(BACKEND, err, from_sqlx))
}

/// A wait this side gave up on: the database is unavailable, as far as this call can tell.
fn timed_out(what: &str, bound: Duration) -> StoreError {
    StoreError::Unavailable(format!("{BACKEND}: no answer {what} within {} ms", bound.as_millis()))
}

/// The outcome of a statement run on `conn` under `tokio::time::timeout(bound, ..)`. Past the bound
/// the connection, in an unknown state, is closed instead of going back to the pool (whose own
/// check of a returned connection would wait forever on a server that answers nothing), and the
/// failure is an I/O timeout ([`StoreError::Unavailable`] once translated).
pub(crate) fn watched<T>(
    mut conn: PoolConnection<Postgres>,
    outcome: Result<Result<T, sqlx::Error>, tokio::time::error::Elapsed>,
    bound: Duration,
) -> Result<T, sqlx::Error> {
    match outcome {
        Ok(result) => result,
        Err(_) => {
            conn.close_on_drop();
            Err(sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {} ms", bound.as_millis()),
            )))
        }
    }
}

/// Refuses a database whose applied migrations are not exactly this version's.
async fn require_current(pool: &PgPool) -> Result<(), StoreError> {
    let has_table: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(pool)
        .await
        .map_err(from_sqlx)?;
    let versions = if has_table {
        Some(
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                .fetch_all(pool)
                .await
                .map_err(from_sqlx)?,
        )
    } else {
        None
    };
    crate::error::require_current(BACKEND, &MIGRATOR, versions)
}

/// Takes a transaction-scoped advisory lock named by `key` (released at commit or rollback).
async fn xact_lock(tx: &mut Transaction<'static, Postgres>, key: &str) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(key)
        .execute(&mut **tx)
        .await
        .map_err(from_sqlx)?;
    Ok(())
}

/// A serialization failure or deadlock: the transaction was rolled back and may be run again.
fn is_conflict(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("40001" | "40P01")))
}

/// Translates a PostgreSQL failure, once, at the backend boundary.
pub(crate) fn from_sqlx(err: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &err {
        if db.is_unique_violation() {
            return StoreError::AlreadyExists;
        }
        let code = db.code().unwrap_or_default();
        return match code.as_ref() {
            // connection_exception class, shutdowns, too many connections, out of resources
            c if c.starts_with("08") => StoreError::Unavailable(format!("{BACKEND}: connection failure ({c})")),
            "57P01" | "57P02" | "57P03" | "53000" | "53100" | "53200" | "53300" => {
                StoreError::Unavailable(format!("{BACKEND}: server unavailable ({code})"))
            }
            // statement_timeout (or a cancel), lock_timeout, idle_in_transaction_session_timeout:
            // the statement or transaction was rolled back
            "57014" | "55P03" | "25P03" => StoreError::Unavailable(format!("{BACKEND}: timed out ({code})")),
            // serialization failure, deadlock: the transaction was rolled back and may be retried
            "40001" | "40P01" => StoreError::Unavailable(format!("{BACKEND}: transaction conflict ({code})")),
            _ => StoreError::Internal(format!("{BACKEND}: {} ({code})", db.message())),
        };
    }
    crate::error::other(BACKEND, err)
}

#[async_trait]
impl DurableStore for PgStore {
    /// Acquires a connection (within `acquire_timeout`) and runs one round trip on it (within the
    /// statement bound).
    async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(from_sqlx)?;
        let outcome = tokio::time::timeout(self.statement_bound, conn.ping()).await;
        watched(conn, outcome, self.statement_bound).map_err(from_sqlx)
    }

    fn backend(&self) -> &'static str {
        BACKEND
    }
}
