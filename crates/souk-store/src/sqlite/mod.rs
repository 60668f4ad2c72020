//! The SQLite backend: the embedded default, one file opened in WAL mode.
//!
//! Two pools: a **writer** with exactly one connection, through which every write and every write
//! transaction goes (so SQLite never has to upgrade a read lock and fail with `SQLITE_BUSY`), and a
//! **reader** with a few connections for plain reads, which WAL lets run beside the writer. Write
//! transactions start with `BEGIN IMMEDIATE`, so even a second process on the same file waits (up
//! to the 5 s busy timeout) instead of failing halfway.
//!
//! The statements both backends run are written once in [`crate::shared`]; each file here invokes
//! its area's macro with the pools above and hand-writes only what is SQLite's own.

use std::str::FromStr;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use souk_core::store::{DurableStore, StoreError};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, Transaction};

mod calls;
mod cdn;
mod clients;
mod cloud;
mod codes;
mod group;
mod jobs;
mod ledger;
mod media;
mod messages;
mod payments;
mod registry;
mod tokens;

const BACKEND: &str = "sqlite";
const READERS: u32 = 4;
/// How often the checkpointer copies the WAL into the database file. Often, so that each copy is
/// short: it runs on another thread, but on a loaded machine it takes CPU time from the calls, and a
/// quarter-second's WAL (megabytes under load) held them back long enough to double the sync
/// invoke's p99 latency (measured against 250 ms: p99 8 ms against 13 to 19 ms).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);
/// The writer's own automatic checkpoint, in pages: a safety net only, far past what the
/// checkpointer lets the WAL reach (SQLite's default is 1000).
const WRITER_AUTOCHECKPOINT_PAGES: &str = "16384";
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// SQLite result codes (the low byte of extended codes) that mean "try again later".
const SQLITE_BUSY: i64 = 5;
const SQLITE_LOCKED: i64 = 6;
const SQLITE_IOERR: i64 = 10;
const SQLITE_FULL: i64 = 13;
const SQLITE_CANTOPEN: i64 = 14;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The durable store on an SQLite file (`sqlite://<path>`).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    /// The hot path's reservations and settlements, group-committed on `writer`.
    group: std::sync::Arc<group::GroupCommit>,
    /// Alive while any clone of the store is: the checkpointer stops when it is gone.
    _alive: std::sync::Arc<()>,
}

impl SqliteStore {
    /// Opens the file named by `url` (`sqlite://<path>`, created if missing) in WAL mode and brings
    /// its schema up to date.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, crate::Migrations::Apply).await
    }

    /// [`SqliteStore::connect`], with a choice about migrations ([`crate::Migrations`]).
    pub async fn connect_with(url: &str, migrations: crate::Migrations) -> Result<Self, StoreError> {
        let apply = migrations == crate::Migrations::Apply;
        let options = SqliteConnectOptions::from_str(url)
            .map_err(from_sqlx)?
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let writer_options = options
            .clone()
            .create_if_missing(apply)
            .pragma("wal_autocheckpoint", WRITER_AUTOCHECKPOINT_PAGES);
        if !apply && !writer_options.get_filename().exists() {
            return Err(StoreError::Internal(format!(
                "{BACKEND}: no database at {}; run `souk migrate` first (or start without --no-migrate)",
                writer_options.get_filename().display()
            )));
        }
        let writer = connect_writer(writer_options).await?;
        if apply {
            migrate(&writer).await?;
        } else {
            require_current(&writer).await?;
        }
        let reader = SqlitePoolOptions::new()
            .max_connections(READERS)
            .connect_with(options.create_if_missing(false))
            .await
            .map_err(from_sqlx)?;
        tracing::debug!(backend = BACKEND, "store open, migrations applied");
        let alive = std::sync::Arc::new(());
        tokio::spawn(checkpointer(reader.clone(), std::sync::Arc::downgrade(&alive)));
        Ok(SqliteStore {
            writer,
            reader,
            group: std::sync::Arc::default(),
            _alive: alive,
        })
    }

    /// Starts a write transaction on the single writer connection.
    ///
    /// In a task of its own: sqlx's `begin_with` on SQLite is not cancel-safe. It begins, then
    /// awaits the handle to check the transaction is open; a caller dropped in that window (a
    /// client hanging up drops its request's future) leaves the writer inside a transaction no
    /// `Transaction` owns, and every later write fails or waits forever. A spawned task always
    /// finishes; when its caller is gone the `Transaction` it made is dropped, which rolls back.
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        let writer = self.writer.clone();
        tokio::spawn(async move { writer.begin_with("BEGIN IMMEDIATE").await })
            .await
            .map_err(|err| StoreError::Internal(format!("{BACKEND}: beginning a write transaction: {err}")))?
            .map_err(from_sqlx)
    }
}

/// Copies the WAL into the database file every [`CHECKPOINT_EVERY`] from a reader connection
/// (`PRAGMA wal_checkpoint(PASSIVE)`, which waits for no reader or writer), so that the writer's
/// commits never run the checkpoint and its fsync themselves: with SQLite's default automatic
/// checkpoint, the commit that crossed 1000 WAL pages did, and every call queued on the writer
/// waited for it. Stops once the store is dropped.
async fn checkpointer(reader: SqlitePool, alive: std::sync::Weak<()>) {
    let mut ticks = tokio::time::interval(CHECKPOINT_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if alive.strong_count() == 0 {
            return;
        }
        if let Err(err) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&reader).await {
            tracing::warn!(error = %from_sqlx(err), "sqlite: checkpoint failed; the writer's own checkpoint takes over");
        }
    }
}

/// Opens the writer pool. Switching a new file to WAL can answer `SQLITE_BUSY` at once, without
/// waiting on the busy timeout, when another process opens the same file at the same moment; that
/// is retried for as long as the busy timeout.
async fn connect_writer(options: SqliteConnectOptions) -> Result<SqlitePool, StoreError> {
    let started = Instant::now();
    loop {
        match SqlitePoolOptions::new().max_connections(1).connect_with(options.clone()).await {
            Ok(pool) => return Ok(pool),
            Err(err) if is_busy(&err) && started.elapsed() < BUSY_TIMEOUT => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(err) => return Err(from_sqlx(err)),
        }
    }
}

/// Runs the migrations inside one `BEGIN EXCLUSIVE` transaction: sqlx takes no lock for SQLite, so
/// this is what keeps two processes opening a new file at once from both creating the schema (the
/// second waits on the busy timeout, then finds every migration applied). Each migration runs in a
/// savepoint of that transaction.
async fn migrate(writer: &SqlitePool) -> Result<(), StoreError> {
    let mut tx = writer.begin_with("BEGIN EXCLUSIVE").await.map_err(from_sqlx)?;
    // `run_direct` is `run` on a bare connection (sqlx's own workaround for `Acquire` lifetimes).
    MIGRATOR
        .run_direct(&mut *tx)
        .await
        .map_err(|e| crate::error::migrate(BACKEND, e, from_sqlx))?;
    tx.commit().await.map_err(from_sqlx)
}

/// This backend's migrations.
pub(crate) fn migrator() -> &'static sqlx::migrate::Migrator {
    &MIGRATOR
}

/// Refuses a database whose applied migrations are not exactly this version's.
async fn require_current(writer: &SqlitePool) -> Result<(), StoreError> {
    let has_table: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations')")
            .fetch_one(writer)
            .await
            .map_err(from_sqlx)?;
    let versions = if has_table {
        Some(
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                .fetch_all(writer)
                .await
                .map_err(from_sqlx)?,
        )
    } else {
        None
    };
    crate::error::require_current(BACKEND, &MIGRATOR, versions)
}

/// The primary SQLite result code of a database error (the low byte of the extended code).
fn primary_code(db: &dyn sqlx::error::DatabaseError) -> i64 {
    db.code().and_then(|c| c.parse::<i64>().ok()).unwrap_or(0) & 0xff
}

fn is_busy(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if matches!(primary_code(db.as_ref()), SQLITE_BUSY | SQLITE_LOCKED))
}

/// Translates an SQLite failure, once, at the backend boundary.
pub(crate) fn from_sqlx(err: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &err {
        if db.is_unique_violation() {
            return StoreError::AlreadyExists;
        }
        return match primary_code(db.as_ref()) {
            SQLITE_BUSY | SQLITE_LOCKED => StoreError::Unavailable(format!("{BACKEND}: database is locked")),
            SQLITE_IOERR | SQLITE_FULL | SQLITE_CANTOPEN => StoreError::Unavailable(format!("{BACKEND}: {}", db.message())),
            _ => StoreError::Internal(format!("{BACKEND}: {}", db.message())),
        };
    }
    crate::error::other(BACKEND, err)
}

#[async_trait]
impl DurableStore for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.reader).await.map_err(from_sqlx)?;
        Ok(())
    }

    fn backend(&self) -> &'static str {
        BACKEND
    }
}
