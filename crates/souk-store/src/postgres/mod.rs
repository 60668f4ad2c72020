//! The PostgreSQL backend, for several souk nodes sharing one database.
//!
//! Exactness comes from the database alone: conditional updates re-checked under row locks (READ
//! COMMITTED), `INSERT ... ON CONFLICT DO NOTHING` for idempotency keys, and transaction-scoped
//! advisory locks where a read-then-write must serialize (token rotation, reaping). Migrations run
//! under sqlx's migrator, which holds a session advisory lock (`pg_advisory_lock`, keyed by the
//! database name) for the whole run, so nodes starting together migrate one at a time.
//!
//! The statements both backends run are written once in [`crate::shared`]; each file here invokes
//! its area's macro with the one pool and hand-writes only what is PostgreSQL's own.

use std::time::Duration;

use async_trait::async_trait;
use souk_core::store::{DurableStore, StoreError};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};

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
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The durable store on a PostgreSQL database (`postgres://...` or `postgresql://...`).
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// The queues of this node's ledger batches.
    batches: ledger::Batches,
}

impl PgStore {
    /// Connects to the database named by `url` and brings its schema up to date.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, crate::Migrations::Apply).await
    }

    /// [`PgStore::connect`], with a choice about migrations ([`crate::Migrations`]).
    pub async fn connect_with(url: &str, migrations: crate::Migrations) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect(url)
            .await
            .map_err(from_sqlx)?;
        if migrations == crate::Migrations::Require {
            if let Err(err) = require_current(&pool).await {
                pool.close().await;
                return Err(err);
            }
        } else if let Err(err) = MIGRATOR.run(&pool).await {
            // Closing the pool ends the session, and with it the migrator's advisory lock.
            pool.close().await;
            return Err(crate::error::migrate(BACKEND, err, from_sqlx));
        }
        tracing::debug!(backend = BACKEND, "store open, migrations applied");
        let batches = ledger::Batches::start(&pool);
        Ok(PgStore { pool, batches })
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
            // serialization failure, deadlock: the transaction was rolled back and may be retried
            "40001" | "40P01" => StoreError::Unavailable(format!("{BACKEND}: transaction conflict ({code})")),
            _ => StoreError::Internal(format!("{BACKEND}: {} ({code})", db.message())),
        };
    }
    crate::error::other(BACKEND, err)
}

#[async_trait]
impl DurableStore for PgStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(from_sqlx)?;
        Ok(())
    }

    fn backend(&self) -> &'static str {
        BACKEND
    }
}
