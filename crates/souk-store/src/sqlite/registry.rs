//! Apps, services, APIs and packages on SQLite: the shared statements ([`crate::shared::registry`]),
//! reads on the reader pool, writes on the single writer connection.

use super::{from_sqlx, SqliteStore};

crate::shared::registry::impl_registry! {
    store: SqliteStore,
    db: Sqlite,
    read: reader,
    write: writer,
    begin: begin_write,
    // `BEGIN IMMEDIATE` keeps every other writer out until commit: no row lock needed (nor has
    // SQLite any).
    service_lock: "",
}
