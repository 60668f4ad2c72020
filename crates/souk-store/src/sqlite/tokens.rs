//! Access tokens and the stable-token force-refresh counter on SQLite: the shared statements
//! ([`crate::shared::tokens`]). Every multi-step change runs in one `BEGIN IMMEDIATE` transaction
//! on the single writer connection, so rotations serialize without a lock of their own.

use souk_core::model::{Supersede, TokenKind, TokenRecord};
use souk_core::store::StoreError;
use sqlx::{Sqlite, Transaction};

use super::{from_sqlx, SqliteStore};
use shared::supersede_all;

crate::shared::tokens::impl_tokens! {
    store: SqliteStore,
    db: Sqlite,
    read: reader,
    write: writer,
    begin: begin_write,
    // `superseded` is an INTEGER column holding 0 or 1.
    sql_true: "1",
    sql_false: "0",
    // SQLite's scalar MIN takes several arguments.
    least: "MIN",
    // The row may not exist yet.
    save_force_refresh: "INSERT INTO force_refresh (appid, day, count, last_at_ms) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (appid) DO UPDATE SET day = excluded.day, count = excluded.count, last_at_ms = excluded.last_at_ms",
    lock_rotation: lock_rotation,
    kill_tokens: kill_tokens,
    read_force_refresh: read_force_refresh,
    issue_token: grouped_issue,
}

/// Hook of [`crate::shared::tokens`]: token issues are group-committed with the ledger's writes
/// ([`super::group`]).
async fn grouped_issue(
    store: &SqliteStore,
    token: &TokenRecord,
    supersede: Supersede,
    expect_current: Option<Option<&str>>,
) -> Result<bool, StoreError> {
    store.group.issue_token(&store.writer, token, supersede, expect_current).await
}

/// Hook of [`crate::shared::tokens`]: nothing to lock, `BEGIN IMMEDIATE` already serializes
/// rotations (and every other write).
async fn lock_rotation(_tx: &mut Transaction<'static, Sqlite>, _appid: &str, _kind: TokenKind) -> Result<(), StoreError> {
    Ok(())
}

/// Hook of [`crate::shared::tokens`], [`Tokens::kill_tokens`](souk_core::store::Tokens::kill_tokens):
/// one statement on the writer.
async fn kill_tokens(store: &SqliteStore, appid: &str, kind: TokenKind, now_ms: i64) -> Result<u64, StoreError> {
    supersede_all(&store.writer, appid, kind, now_ms).await
}

/// Hook of [`crate::shared::tokens`]: the counter as stored, if any; `BEGIN IMMEDIATE` keeps every
/// other writer out until commit.
async fn read_force_refresh(
    tx: &mut Transaction<'static, Sqlite>,
    appid: &str,
    _day: i64,
) -> Result<Option<(i64, i64, Option<i64>)>, StoreError> {
    sqlx::query_as("SELECT day, count, last_at_ms FROM force_refresh WHERE appid = $1")
        .bind(appid)
        .fetch_optional(&mut **tx)
        .await
        .map_err(from_sqlx)
}
