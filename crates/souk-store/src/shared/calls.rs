//! The call log, shared: batched inserts in one transaction and a filtered, keyset-paged read.

/// Expands [`CallLog`](souk_core::store::CallLog) for a backend store (common parameters: see
/// [`crate::shared`]).
///
/// Knobs: `insert_chunk`, the rows per `INSERT` statement, and `insert`, the function that inserts
/// one chunk in the transaction (`values_insert`, defined here: one `VALUES` row of 15 bind
/// parameters per call, so the chunk is sized to the backend's limit on bind parameters).
macro_rules! impl_call_log {
    (store: $store:ident, db: $db:ident, read: $read:ident, begin: $begin:ident, insert_chunk: $chunk:expr, insert: $insert:path $(,)?) => {
        mod shared {
            use super::*;

            use async_trait::async_trait;
            use souk_core::model::{CallFilter, CallRecord};
            use souk_core::store::{CallLog, StoreError};
            use sqlx::{$db, QueryBuilder};
            use $crate::rows::{self, CallRow, CALL_COLUMNS};

            /// Inserts `chunk` as one `INSERT ... VALUES` with a row of bind parameters per call.
            #[allow(dead_code, reason = "a backend may insert its own way")]
            async fn values_insert(tx: &mut sqlx::Transaction<'static, $db>, chunk: &[CallRecord]) -> Result<(), StoreError> {
                let mut query: QueryBuilder<'_, $db> = QueryBuilder::new(format!("INSERT INTO calls ({CALL_COLUMNS}) "));
                query.push_values(chunk, |mut row, call| {
                    row.push_bind(&call.request_id)
                        .push_bind(call.at_ms)
                        .push_bind(&call.route)
                        .push_bind(&call.appid)
                        .push_bind(&call.openid)
                        .push_bind(&call.service_id)
                        .push_bind(&call.api)
                        .push_bind(call.errcode)
                        .push_bind(&call.message)
                        .push_bind(call.latency_us)
                        .push_bind(&call.package_id)
                        .push_bind(call.bytes_in)
                        .push_bind(call.bytes_out)
                        .push_bind(call.cache_hit)
                        .push_bind(&call.plugin_appid);
                });
                query.push(" ON CONFLICT (request_id) DO NOTHING");
                query.build().execute(&mut **tx).await.map_err(from_sqlx)?;
                Ok(())
            }

            #[async_trait]
            impl CallLog for $store {
                async fn append_calls(&self, calls: &[CallRecord]) -> Result<(), StoreError> {
                    if calls.is_empty() {
                        return Ok(());
                    }
                    let mut tx = self.$begin().await?;
                    for chunk in calls.chunks($chunk) {
                        $insert(&mut tx, chunk).await?;
                    }
                    tx.commit().await.map_err(from_sqlx)
                }

                async fn list_calls(&self, filter: &CallFilter) -> Result<Vec<CallRecord>, StoreError> {
                    let mut query: QueryBuilder<'_, $db> = QueryBuilder::new(format!("SELECT {CALL_COLUMNS} FROM calls WHERE 1 = 1"));
                    if let Some(appid) = &filter.appid {
                        query.push(" AND appid = ").push_bind(appid);
                    }
                    if let Some(service_id) = &filter.service_id {
                        query.push(" AND service_id = ").push_bind(service_id);
                    }
                    if let Some(api) = &filter.api {
                        query.push(" AND api = ").push_bind(api);
                    }
                    if let Some(errcode) = filter.errcode {
                        query.push(" AND errcode = ").push_bind(errcode);
                    }
                    if let Some(request_id) = &filter.request_id {
                        query.push(" AND request_id = ").push_bind(request_id);
                    }
                    if let Some(since_ms) = filter.since_ms {
                        query.push(" AND at_ms >= ").push_bind(since_ms);
                    }
                    if let Some((at_ms, request_id)) = &filter.before {
                        query
                            .push(" AND (at_ms, request_id) < (")
                            .push_bind(*at_ms)
                            .push(", ")
                            .push_bind(request_id)
                            .push(")");
                    }
                    query
                        .push(" ORDER BY at_ms DESC, request_id DESC LIMIT ")
                        .push_bind(rows::limit(filter.limit));
                    let rows: Vec<CallRow> = query.build_query_as().fetch_all(&self.$read).await.map_err(from_sqlx)?;
                    Ok(rows.into_iter().map(CallRecord::from).collect())
                }
            }
        }
    };
}

pub(crate) use impl_call_log;
