//! CDN file metadata on SQLite: the shared single statements ([`crate::shared::cdn`]), reads on the
//! reader pool, writes on the single writer connection.

use super::{from_sqlx, SqliteStore};

crate::shared::cdn::impl_cdn_files! { store: SqliteStore, read: reader, write: writer }
