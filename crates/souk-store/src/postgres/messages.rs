//! Customer-service messages on PostgreSQL: the shared statements ([`crate::shared::messages`]) on the
//! one pool. Each rule reads the conversation row `FOR UPDATE`, so racing replies of one conversation
//! serialize and none sees a stale count; claims take due pushes with `FOR UPDATE SKIP LOCKED`.

use souk_core::store::messages::StoredMessage;
use souk_core::store::StoreError;

use super::{from_sqlx, PgStore};
use crate::message_rows::MESSAGE_COLUMNS;
use crate::shared::messages::{DUE_PUSHES, LEASE_PUSHES};
use shared::claim_with;

crate::shared::messages::impl_conversations! {
    store: PgStore,
    db: Postgres,
    read: pool,
    write: pool,
    begin: begin,
    // The conversation row is read, checked and rewritten: lock it until commit.
    row_lock: " FOR UPDATE",
    claim_pushes: claim_pushes,
}

/// Hook of [`crate::shared::messages`]: one statement, the due rows locked with `FOR UPDATE SKIP
/// LOCKED` in a CTE (which runs once).
async fn claim_pushes(store: &PgStore, now_ms: i64, lease_ms: i64, limit: u32) -> Result<Vec<StoredMessage>, StoreError> {
    let claim = format!(
        "WITH due AS ({DUE_PUSHES} FOR UPDATE SKIP LOCKED) {LEASE_PUSHES} WHERE msg_id IN (SELECT msg_id FROM due) \
         RETURNING {MESSAGE_COLUMNS}"
    );
    claim_with(&store.pool, &claim, now_ms, lease_ms, limit).await
}
