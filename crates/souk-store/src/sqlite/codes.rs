//! Mini-program codes on SQLite: the shared statements ([`crate::shared::codes`]). A count runs in
//! one `BEGIN IMMEDIATE` transaction on the single writer connection, so counts serialize without a
//! lock of their own.

use souk_core::store::StoreError;
use sqlx::{Sqlite, Transaction};

use super::{from_sqlx, SqliteStore};

crate::shared::codes::impl_code_quota! {
    store: SqliteStore,
    read: reader,
    begin: begin_write,
    lock_codes: lock_codes,
}

/// Hook of [`crate::shared::codes`]: nothing to lock, `BEGIN IMMEDIATE` already serializes counts
/// (and every other write).
async fn lock_codes(_tx: &mut Transaction<'static, Sqlite>, _appid: &str) -> Result<(), StoreError> {
    Ok(())
}
