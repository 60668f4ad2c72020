//! The call log on SQLite: the shared statements ([`crate::shared::calls`]), batches in one
//! `BEGIN IMMEDIATE` transaction on the single writer connection, reads on the reader pool.

use super::{from_sqlx, SqliteStore};

crate::shared::calls::impl_call_log! {
    store: SqliteStore,
    db: Sqlite,
    read: reader,
    begin: begin_write,
    // 15 bind parameters each: 7,500 per statement, well under SQLite's 32,766.
    insert_chunk: 500,
    insert: values_insert,
}
