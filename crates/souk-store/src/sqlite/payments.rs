//! Reported payments on Sqlite: the shared statements ([`crate::shared::payments`]).

use super::{from_sqlx, SqliteStore};

crate::shared::payments::impl_payments! {
    store: SqliteStore,
    read: reader,
    begin: begin_write,
}
