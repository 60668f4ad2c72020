//! The call log on PostgreSQL: the shared statements ([`crate::shared::calls`]) on the one pool.

use super::{from_sqlx, PgStore};

crate::shared::calls::impl_call_log! {
    store: PgStore,
    db: Postgres,
    read: pool,
    begin: begin,
    // 15 bind parameters each: 15,000 per statement, well under PostgreSQL's 65,535.
    insert_chunk: 1000,
}
