//! Mini-program codes on PostgreSQL: the shared statements ([`crate::shared::codes`]) on the one
//! pool. A count takes a transaction-scoped advisory lock keyed by app, so racing counts of one app
//! serialize and none sees a stale count.

use souk_core::store::StoreError;
use sqlx::{Postgres, Transaction};

use super::{from_sqlx, xact_lock, PgStore};

crate::shared::codes::impl_code_quota! {
    store: PgStore,
    read: pool,
    begin: begin,
    lock_codes: lock_codes,
}

/// Hook of [`crate::shared::codes`]: the app's count lock, held until commit.
async fn lock_codes(tx: &mut Transaction<'static, Postgres>, appid: &str) -> Result<(), StoreError> {
    xact_lock(tx, &format!("souk.codes:{appid}")).await
}
