//! End users, client sessions and grants on SQLite: the shared statements
//! ([`crate::shared::clients`]), get-or-create and updates in one `BEGIN IMMEDIATE` transaction on
//! the single writer connection, reads on the reader pool.

use super::{from_sqlx, SqliteStore};

crate::shared::clients::impl_clients! {
    store: SqliteStore,
    read: reader,
    write: writer,
    begin: begin_write,
    // `BEGIN IMMEDIATE` keeps every other writer out until commit: no row lock needed.
    user_lock: "",
}
