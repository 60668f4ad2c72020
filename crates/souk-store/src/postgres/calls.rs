//! The call log on PostgreSQL: the shared statements ([`crate::shared::calls`]) on the one pool,
//! with a batch inserted as one array per column (`unnest`): one statement text whatever the
//! batch's size, so it is parsed and planned once per connection instead of once per size.

use souk_core::model::CallRecord;
use souk_core::store::StoreError;
use sqlx::{Postgres, Transaction};

use super::{from_sqlx, PgStore};
use crate::rows::CALL_COLUMNS;

crate::shared::calls::impl_call_log! {
    store: PgStore,
    db: Postgres,
    read: pool,
    begin: begin,
    // 15 array parameters whatever the size; a batch of the call-log writer (1,000 at most) is one.
    insert_chunk: 1000,
    insert: unnest_insert,
}

/// Inserts `chunk` as one `INSERT ... SELECT FROM unnest(...)` of an array per column, in the
/// order of [`crate::rows::CALL_COLUMNS`].
async fn unnest_insert(tx: &mut Transaction<'static, Postgres>, chunk: &[CallRecord]) -> Result<(), StoreError> {
    let text = |field: fn(&CallRecord) -> &str| -> Vec<&str> { chunk.iter().map(field).collect() };
    let optional = |field: fn(&CallRecord) -> Option<&str>| -> Vec<Option<&str>> { chunk.iter().map(field).collect() };
    let number = |field: fn(&CallRecord) -> i64| -> Vec<i64> { chunk.iter().map(field).collect() };
    let statement = format!(
        "INSERT INTO calls ({CALL_COLUMNS}) \
         SELECT * FROM unnest($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
           $8::int8[], $9::text[], $10::int8[], $11::text[], $12::int8[], $13::int8[], $14::bool[], $15::text[]) \
         ON CONFLICT (request_id) DO NOTHING"
    );
    sqlx::query(&statement)
        .bind(text(|c| &c.request_id))
        .bind(number(|c| c.at_ms))
        .bind(text(|c| &c.route))
        .bind(optional(|c| c.appid.as_deref()))
        .bind(optional(|c| c.openid.as_deref()))
        .bind(optional(|c| c.service_id.as_deref()))
        .bind(optional(|c| c.api.as_deref()))
        .bind(number(|c| c.errcode))
        .bind(optional(|c| c.message.as_deref()))
        .bind(number(|c| c.latency_us))
        .bind(optional(|c| c.package_id.as_deref()))
        .bind(number(|c| c.bytes_in))
        .bind(number(|c| c.bytes_out))
        .bind(chunk.iter().map(|c| c.cache_hit).collect::<Vec<bool>>())
        .bind(optional(|c| c.plugin_appid.as_deref()))
        .execute(&mut **tx)
        .await
        .map_err(from_sqlx)?;
    Ok(())
}
