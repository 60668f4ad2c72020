//! Reported payments on PostgreSQL: the shared statements ([`crate::shared::payments`]).

use super::{from_sqlx, PgStore};

crate::shared::payments::impl_payments! {
    store: PgStore,
    read: pool,
    begin: begin,
}
