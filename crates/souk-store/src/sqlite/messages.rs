//! Customer-service messages on SQLite: the shared statements ([`crate::shared::messages`]), every
//! rule's read and write in one `BEGIN IMMEDIATE` transaction on the single writer connection, so
//! replies and typing never race.

use souk_core::store::messages::StoredMessage;
use souk_core::store::StoreError;

use super::{from_sqlx, SqliteStore};
use crate::message_rows::MESSAGE_COLUMNS;
use crate::shared::messages::{DUE_PUSHES, LEASE_PUSHES};
use shared::claim_with;

crate::shared::messages::impl_conversations! {
    store: SqliteStore,
    db: Sqlite,
    read: reader,
    write: writer,
    begin: begin_write,
    // `BEGIN IMMEDIATE` keeps every other writer out until commit: no row lock needed.
    row_lock: "",
    claim_pushes: claim_pushes,
}

/// Hook of [`crate::shared::messages`]: one `UPDATE ... WHERE msg_id IN (due pushes)` in a `BEGIN
/// IMMEDIATE` transaction, which no other claimer can interleave with.
async fn claim_pushes(store: &SqliteStore, now_ms: i64, lease_ms: i64, limit: u32) -> Result<Vec<StoredMessage>, StoreError> {
    let claim = format!("{LEASE_PUSHES} WHERE msg_id IN ({DUE_PUSHES}) RETURNING {MESSAGE_COLUMNS}");
    let mut tx = store.begin_write().await?;
    let messages = claim_with(&mut *tx, &claim, now_ms, lease_ms, limit).await?;
    tx.commit().await.map_err(from_sqlx)?;
    Ok(messages)
}
