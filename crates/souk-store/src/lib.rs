//! Durable storage backends of souk: SQLite (the embedded default) and PostgreSQL, both implementing
//! [`souk_core::store::DurableStore`].
//!
//! [`open`] picks the backend from the URL scheme (`sqlite://<path>`, `postgres://...` or
//! `postgresql://...`), connects and brings the schema up to date before answering. Every exactness
//! rule of the traits (a unit charged once, a `client_msg_id` answered once, a token rotated once) is
//! done inside one database transaction, never with an in-process lock, so several nodes may share one
//! PostgreSQL database.

use std::sync::Arc;
use std::time::Duration;

use souk_core::store::{DurableStore, StoreError};

mod cdn_rows;
mod client_rows;
mod cloud_rows;
mod code_rows;
mod error;
mod job_rows;
mod media_rows;
mod message_rows;
mod postgres;
mod rows;
mod shared;
mod sqlite;

#[cfg(feature = "testsuite")]
pub mod conformance;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// The URL schemes [`open`] understands.
pub const SUPPORTED_SCHEMES: &[&str] = &["sqlite://", "postgres://", "postgresql://"];

/// What opening a store does about its schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Migrations {
    /// Apply the pending migrations (serialized between processes starting together).
    Apply,
    /// Apply nothing: refuse a database whose schema is not exactly this version's, naming the
    /// migrations it lacks (`souk migrate` applies them), and never create a missing SQLite file.
    Require,
}

impl Migrations {
    /// The newest migration this souk knows for the backend of `url` (`None`: not a store URL).
    pub fn latest_version(url: &str) -> Option<i64> {
        let migrator = match scheme_of(url)? {
            Backend::Sqlite => sqlite::migrator(),
            Backend::Postgres => postgres::migrator(),
        };
        migrator.iter().map(|m| m.version).max()
    }
}

/// The bounds on a store's waits for the database ([`open_with_settings`]).
///
/// They apply to PostgreSQL, which another machine may stop answering: every pooled connection
/// carries `statement_timeout` and `idle_in_transaction_session_timeout` (and server-side TCP
/// keepalives, so PostgreSQL notices a vanished node and rolls its transaction back), getting a
/// connection (connecting included) is bounded by `acquire_timeout`, and the ledger batches bound
/// their statements and their callers' waits on the client side as well. SQLite, a file of this
/// process, keeps its own busy timeout and ignores them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreSettings {
    /// The longest wait for a pooled connection, connecting included.
    pub acquire_timeout: Duration,
    /// The longest one statement runs before PostgreSQL cancels it (lock waits included).
    pub statement_timeout: Duration,
    /// The longest a transaction may sit idle before PostgreSQL ends its session (a node that
    /// stopped halfway through a transaction holds its row locks no longer than this).
    pub idle_in_transaction_timeout: Duration,
}

impl StoreSettings {
    /// The default `acquire_timeout`: a few seconds, so that calls fail clearly while the
    /// database is unreachable instead of piling up.
    pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
    /// The default `statement_timeout`: the hot path's statements take milliseconds; the longest
    /// ones are the minute-by-minute sweeps.
    pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);
    /// The default `idle_in_transaction_timeout`: souk never waits on anything else inside a
    /// transaction, so an idle one belongs to a node that hung or died.
    pub const DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(10);
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            acquire_timeout: Self::DEFAULT_ACQUIRE_TIMEOUT,
            statement_timeout: Self::DEFAULT_STATEMENT_TIMEOUT,
            idle_in_transaction_timeout: Self::DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT,
        }
    }
}

/// Opens the store named by `url`, runs its migrations and returns it ready for use.
///
/// `sqlite://<path>` opens (creating if missing) an embedded SQLite file; `postgres://...` or
/// `postgresql://...` connects to PostgreSQL. Any other scheme is an [`StoreError::Internal`] naming
/// the supported ones.
pub async fn open(url: &str) -> Result<Arc<dyn DurableStore>, StoreError> {
    open_with(url, Migrations::Apply).await
}

/// [`open`], with a choice about migrations.
pub async fn open_with(url: &str, migrations: Migrations) -> Result<Arc<dyn DurableStore>, StoreError> {
    open_with_settings(url, migrations, StoreSettings::default()).await
}

/// [`open_with`], with bounds on the waits for the database ([`StoreSettings`]).
pub async fn open_with_settings(url: &str, migrations: Migrations, settings: StoreSettings) -> Result<Arc<dyn DurableStore>, StoreError> {
    match scheme_of(url) {
        Some(Backend::Sqlite) => Ok(Arc::new(SqliteStore::connect_with(url, migrations).await?)),
        Some(Backend::Postgres) => Ok(Arc::new(PgStore::connect_with_settings(url, migrations, settings).await?)),
        None => Err(StoreError::Internal(format!(
            "unsupported store URL scheme (supported: {})",
            SUPPORTED_SCHEMES.join(", ")
        ))),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

fn scheme_of(url: &str) -> Option<Backend> {
    let lower = url.get(..14).unwrap_or(url).to_ascii_lowercase();
    if lower.starts_with("sqlite://") {
        Some(Backend::Sqlite)
    } else if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
        Some(Backend::Postgres)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes() {
        assert_eq!(scheme_of("sqlite:///var/lib/souk.db"), Some(Backend::Sqlite));
        assert_eq!(scheme_of("sqlite://souk.db"), Some(Backend::Sqlite));
        assert_eq!(scheme_of("postgres://u@h/db"), Some(Backend::Postgres));
        assert_eq!(scheme_of("PostgreSQL://u@h/db"), Some(Backend::Postgres));
        assert_eq!(scheme_of("mysql://u@h/db"), None);
        assert_eq!(scheme_of("sqlite:souk.db"), None);
        assert_eq!(scheme_of(""), None);
    }

    #[tokio::test]
    async fn unknown_scheme_names_the_supported_ones() {
        let Err(StoreError::Internal(message)) = open("mysql://localhost/souk").await else {
            panic!("mysql must be refused");
        };
        for scheme in SUPPORTED_SCHEMES {
            assert!(message.contains(scheme), "{message}");
        }
    }
}
