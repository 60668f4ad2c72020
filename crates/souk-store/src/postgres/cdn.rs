//! CDN file metadata on PostgreSQL: the shared single statements ([`crate::shared::cdn`]) on the
//! one pool.

use super::{from_sqlx, PgStore};

crate::shared::cdn::impl_cdn_files! { store: PgStore, read: pool, write: pool }
