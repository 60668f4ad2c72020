//! The conformance suite: backend-independent checks of every contract of
//! [`souk_core::store`], written once as async functions over an `Arc<dyn DurableStore>` and run
//! against each backend by `tests/conformance.rs` (feature `testsuite`).
//!
//! The harness gives every test its own store: a fresh SQLite file in a temporary directory, or a
//! fresh PostgreSQL database created on the server named by `SOUK_TEST_POSTGRES_URL` and dropped
//! afterwards. Without that variable PostgreSQL tests are skipped, except under `CI`, where they
//! fail.
//!
//! Cases are re-exported here (`conformance::reserve_exactly_once`, ...); record builders live in
//! [`builders`] and are public so other crates' tests can reuse them.

use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use souk_core::store::DurableStore;
use sqlx::{Connection, Executor, PgConnection};

pub mod builders;
mod calls;
mod cdn;
mod clients;
mod cloud;
mod codes;
mod jobs;
mod ledger;
mod media;
mod messages;
mod registry;
mod tokens;

pub use builders::*;
pub use calls::*;
pub use cdn::*;
pub use clients::*;
pub use cloud::*;
pub use codes::*;
pub use jobs::*;
pub use ledger::*;
pub use media::*;
pub use messages::*;
pub use registry::*;
pub use tokens::*;

/// The store under test.
pub type Store = Arc<dyn DurableStore>;

/// The variable naming the PostgreSQL server the suite may create databases on.
pub const POSTGRES_URL_VAR: &str = "SOUK_TEST_POSTGRES_URL";

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

/// Runs `case` with the URL of a fresh SQLite file, removed afterwards.
pub async fn with_sqlite_url<F, Fut>(case: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("souk.db").display());
    let result = tokio::spawn(case(url)).await;
    drop(dir);
    finish(result);
}

/// Runs `case` on a fresh SQLite store.
pub async fn with_sqlite<F, Fut>(case: F)
where
    F: FnOnce(Store) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    with_sqlite_url(|url| open_then(url, case)).await;
}

/// Runs `case` with the URL of a fresh PostgreSQL database (created on the server named by
/// `SOUK_TEST_POSTGRES_URL`, dropped afterwards, best-effort). Skips when the variable is unset,
/// unless `CI` is set; panics when the server cannot be reached.
pub async fn with_postgres_url<F, Fut>(case: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(server_url) = postgres_server_url() else {
        return;
    };
    let database = format!("souk_test_{:016x}", unique());
    let mut admin = PgConnection::connect(&server_url)
        .await
        .unwrap_or_else(|e| panic!("{POSTGRES_URL_VAR} is set but PostgreSQL cannot be reached: {e}"));
    admin
        .execute(format!("CREATE DATABASE {database}").as_str())
        .await
        .unwrap_or_else(|e| panic!("cannot create test database {database}: {e}"));
    let _ = admin.close().await;

    let result = tokio::spawn(case(with_database(&server_url, &database))).await;

    match PgConnection::connect(&server_url).await {
        Ok(mut admin) => {
            if let Err(e) = admin
                .execute(format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)").as_str())
                .await
            {
                eprintln!("could not drop test database {database}: {e}");
            }
            let _ = admin.close().await;
        }
        Err(e) => eprintln!("could not drop test database {database}: {e}"),
    }
    finish(result);
}

/// Runs `case` on a store in a fresh PostgreSQL database (see [`with_postgres_url`]).
pub async fn with_postgres<F, Fut>(case: F)
where
    F: FnOnce(Store) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    with_postgres_url(|url| open_then(url, case)).await;
}

/// The server URL for PostgreSQL tests, or `None` (after saying so) when they are skipped.
fn postgres_server_url() -> Option<String> {
    match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("{POSTGRES_URL_VAR} is required in CI: the PostgreSQL conformance suite must run")
        }
        _ => {
            eprintln!("skipping postgres conformance: {POSTGRES_URL_VAR} unset");
            None
        }
    }
}

async fn open_then<F, Fut>(url: String, case: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let store = crate::open(&url)
        .await
        .unwrap_or_else(|e| panic!("cannot open the store under test: {e}"));
    case(store).await;
}

/// Re-raises a case's panic once the harness has cleaned up.
fn finish(result: Result<(), tokio::task::JoinError>) {
    if let Err(e) = result {
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("test case did not finish: {e}"),
        }
    }
}

/// `url` with its database name replaced by `database` (query parameters kept).
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

fn unique() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    hasher.write_u32(std::process::id());
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.finish()
}
