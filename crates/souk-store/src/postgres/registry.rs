//! Apps, services, APIs and packages on PostgreSQL: the shared statements
//! ([`crate::shared::registry`]) on the one pool.

use super::{from_sqlx, PgStore};

crate::shared::registry::impl_registry! {
    store: PgStore,
    db: Postgres,
    read: pool,
    write: pool,
    begin: begin,
    // A plain read takes no lock under READ COMMITTED: share-lock the checked service row until
    // commit, so the check still holds when the API row goes in.
    service_lock: " FOR SHARE",
}
