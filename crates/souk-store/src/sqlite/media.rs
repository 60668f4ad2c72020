//! Temporary media metadata on SQLite: the shared single statements ([`crate::shared::media`]), reads on
//! the reader pool, writes on the single writer connection.

use super::{from_sqlx, SqliteStore};

crate::shared::media::impl_media_store! { store: SqliteStore, read: reader, write: writer }
