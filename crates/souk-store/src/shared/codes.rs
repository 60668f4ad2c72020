//! Mini-program codes, shared: counting a code is one transaction (lookup of identical parameters,
//! the count, the insert) serialized per app; lookups are single statements.

/// Expands [`CodeQuota`](souk_core::store::codes::CodeQuota) for a backend store (common parameters:
/// see [`crate::shared`]).
///
/// Hook, a function of the invoking file:
/// - `lock_codes(tx, appid) -> Result<(), StoreError>`: serializes the counts of one app from the
///   start of `count_code`'s transaction, so racing calls never count past the limit.
macro_rules! impl_code_quota {
    (
        store: $store:ident,
        read: $read:ident,
        begin: $begin:ident,
        lock_codes: $lock_codes:ident $(,)?
    ) => {
        mod shared {
            use super::*;

            use async_trait::async_trait;
            use souk_core::store::codes::{CodeCount, CodeQuota, CodeRecord};
            use souk_core::store::StoreError;
            use $crate::code_rows::{CodeRow, CODE_COLUMNS};

            #[async_trait]
            impl CodeQuota for $store {
                async fn count_code(&self, code: &CodeRecord, limit: u64) -> Result<CodeCount, StoreError> {
                    let mut tx = self.$begin().await?;
                    $lock_codes(&mut tx, &code.appid).await?;
                    let existing: Option<CodeRow> = sqlx::query_as(&format!(
                        "SELECT {CODE_COLUMNS} FROM codes WHERE appid = $1 AND params_hash = $2"
                    ))
                    .bind(&code.appid)
                    .bind(&code.params_hash)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(from_sqlx)?;
                    if let Some(row) = existing {
                        return Ok(CodeCount::AlreadyCounted(row.into()));
                    }
                    if code.counted {
                        let counted: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM codes WHERE appid = $1 AND counted = $2")
                            .bind(&code.appid)
                            .bind(true)
                            .fetch_one(&mut *tx)
                            .await
                            .map_err(from_sqlx)?;
                        if u64::try_from(counted).unwrap_or(0) >= limit {
                            return Ok(CodeCount::LimitReached);
                        }
                    }
                    sqlx::query(&format!(
                        "INSERT INTO codes ({CODE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                    ))
                    .bind(&code.code_id)
                    .bind(&code.appid)
                    .bind(&code.kind)
                    .bind(&code.params_hash)
                    .bind(code.counted)
                    .bind(&code.path)
                    .bind(&code.page)
                    .bind(&code.scene)
                    .bind(&code.env_version)
                    .bind(code.created_at_ms)
                    .execute(&mut *tx)
                    .await
                    .map_err(from_sqlx)?;
                    tx.commit().await.map_err(from_sqlx)?;
                    Ok(CodeCount::Counted(code.clone()))
                }

                async fn get_code(&self, code_id: &str) -> Result<Option<CodeRecord>, StoreError> {
                    let row: Option<CodeRow> = sqlx::query_as(&format!("SELECT {CODE_COLUMNS} FROM codes WHERE code_id = $1"))
                        .bind(code_id)
                        .fetch_optional(&self.$read)
                        .await
                        .map_err(from_sqlx)?;
                    Ok(row.map(CodeRecord::from))
                }

                async fn counted_codes(&self, appid: &str) -> Result<u64, StoreError> {
                    let counted: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM codes WHERE appid = $1 AND counted = $2")
                        .bind(appid)
                        .bind(true)
                        .fetch_one(&self.$read)
                        .await
                        .map_err(from_sqlx)?;
                    Ok(u64::try_from(counted).unwrap_or(0))
                }
            }
        }
    };
}

pub(crate) use impl_code_quota;
