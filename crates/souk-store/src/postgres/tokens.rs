//! Access tokens and the stable-token force-refresh counter on PostgreSQL: the shared statements
//! ([`crate::shared::tokens`]) on the one pool. A rotation takes a transaction-scoped advisory lock
//! keyed by app and kind, so racing rotations serialize and the `expect_current` check sees the
//! winner's token.

use souk_core::model::TokenKind;
use souk_core::store::StoreError;
use sqlx::{Postgres, Transaction};

use super::{from_sqlx, xact_lock, PgStore};
use shared::supersede_all;

crate::shared::tokens::impl_tokens! {
    store: PgStore,
    db: Postgres,
    read: pool,
    write: pool,
    begin: begin,
    // `superseded` is a BOOLEAN column.
    sql_true: "true",
    sql_false: "false",
    // PostgreSQL's MIN is only the aggregate.
    least: "LEAST",
    // `read_force_refresh` made sure the row exists.
    save_force_refresh: "UPDATE force_refresh SET day = $2, count = $3, last_at_ms = $4 WHERE appid = $1",
    lock_rotation: lock_rotation,
    kill_tokens: kill_tokens,
    read_force_refresh: read_force_refresh,
    // The generated transactional one.
    issue_token: issue_in_transaction,
}

fn rotation_key(appid: &str, kind: TokenKind) -> String {
    format!("souk.tokens:{}:{appid}", kind.as_str())
}

/// Hook of [`crate::shared::tokens`]: the rotation's advisory lock, held until commit.
async fn lock_rotation(tx: &mut Transaction<'static, Postgres>, appid: &str, kind: TokenKind) -> Result<(), StoreError> {
    xact_lock(tx, &rotation_key(appid, kind)).await
}

/// Hook of [`crate::shared::tokens`], [`Tokens::kill_tokens`](souk_core::store::Tokens::kill_tokens):
/// under the rotation's advisory lock, so a racing rotation does not slip a live token in between.
async fn kill_tokens(store: &PgStore, appid: &str, kind: TokenKind, now_ms: i64) -> Result<u64, StoreError> {
    let mut tx = store.begin().await?;
    lock_rotation(&mut tx, appid, kind).await?;
    let killed = supersede_all(&mut *tx, appid, kind, now_ms).await?;
    tx.commit().await.map_err(from_sqlx)?;
    Ok(killed)
}

/// Hook of [`crate::shared::tokens`]: the counter, locked `FOR UPDATE` until commit. The row is
/// created first if missing, so there is one to lock; a fresh row (count 0, no last time) means
/// "none yet".
async fn read_force_refresh(
    tx: &mut Transaction<'static, Postgres>,
    appid: &str,
    day: i64,
) -> Result<Option<(i64, i64, Option<i64>)>, StoreError> {
    sqlx::query(
        "INSERT INTO force_refresh (appid, day, count, last_at_ms) VALUES ($1, $2, 0, NULL) \
         ON CONFLICT (appid) DO NOTHING",
    )
    .bind(appid)
    .bind(day)
    .execute(&mut **tx)
    .await
    .map_err(from_sqlx)?;
    let stored: (i64, i64, Option<i64>) = sqlx::query_as("SELECT day, count, last_at_ms FROM force_refresh WHERE appid = $1 FOR UPDATE")
        .bind(appid)
        .fetch_one(&mut **tx)
        .await
        .map_err(from_sqlx)?;
    Ok(Some(stored))
}
