//! End users, client sessions and grants on PostgreSQL: the shared statements
//! ([`crate::shared::clients`]) on the one pool. Get-or-create needs no lock: the `INSERT ... ON
//! CONFLICT DO NOTHING` waits for a racing insert of the same key to commit, so both read the same
//! row.

use super::{from_sqlx, PgStore};

crate::shared::clients::impl_clients! {
    store: PgStore,
    read: pool,
    write: pool,
    begin: begin,
    // `update_user` reads then rewrites the row: lock it, or a concurrent update's scopes are lost.
    user_lock: " FOR UPDATE",
}
