//! Cloud apps on SQLite: the shared single statements ([`crate::shared::cloud`]), reads on the reader
//! pool, writes on the single writer connection.

use super::{from_sqlx, SqliteStore};

crate::shared::cloud::impl_cloud_apps! { store: SqliteStore, read: reader, write: writer }
