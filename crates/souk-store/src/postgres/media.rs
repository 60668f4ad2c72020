//! Temporary media metadata on PostgreSQL: the shared single statements ([`crate::shared::media`]) on
//! the one pool.

use super::{from_sqlx, PgStore};

crate::shared::media::impl_media_store! { store: PgStore, read: pool, write: pool }
