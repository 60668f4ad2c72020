//! Cloud apps on PostgreSQL: the shared single statements ([`crate::shared::cloud`]) on the one pool.

use super::{from_sqlx, PgStore};

crate::shared::cloud::impl_cloud_apps! { store: PgStore, read: pool, write: pool }
