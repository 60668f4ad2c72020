//! CDN file metadata, shared: single-statement reads and writes, no transaction needed, identical on
//! both backends.

/// Expands [`CdnFiles`](souk_core::store::cdn::CdnFiles) for a backend store (parameters: see
/// [`crate::shared`]). No hooks: nothing here differs between the backends.
macro_rules! impl_cdn_files {
    (store: $store:ident, read: $read:ident, write: $write:ident $(,)?) => {
        mod shared {
            use super::*;

            use async_trait::async_trait;
            use souk_core::store::cdn::{CdnFileRecord, CdnFiles};
            use souk_core::store::StoreError;
            use $crate::cdn_rows::{CdnFileRow, CDN_FILE_COLUMNS};

            #[async_trait]
            impl CdnFiles for $store {
                async fn insert_cdn_file(&self, file: &CdnFileRecord) -> Result<(), StoreError> {
                    sqlx::query(&format!(
                        "INSERT INTO cdn_files ({CDN_FILE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
                    ))
                    .bind(&file.file_id)
                    .bind(&file.appid)
                    .bind(&file.content_type)
                    .bind(file.size)
                    .bind(&file.sha256)
                    .bind(file.created_at_ms)
                    .bind(file.expires_at_ms)
                    .execute(&self.$write)
                    .await
                    .map_err(from_sqlx)?;
                    Ok(())
                }

                async fn get_cdn_file(&self, file_id: &str) -> Result<Option<CdnFileRecord>, StoreError> {
                    let row: Option<CdnFileRow> = sqlx::query_as(&format!("SELECT {CDN_FILE_COLUMNS} FROM cdn_files WHERE file_id = $1"))
                        .bind(file_id)
                        .fetch_optional(&self.$read)
                        .await
                        .map_err(from_sqlx)?;
                    Ok(row.map(CdnFileRecord::from))
                }

                async fn list_expired_cdn_files(&self, now_ms: i64, limit: u32) -> Result<Vec<CdnFileRecord>, StoreError> {
                    let rows: Vec<CdnFileRow> = sqlx::query_as(&format!(
                        "SELECT {CDN_FILE_COLUMNS} FROM cdn_files WHERE expires_at_ms <= $1 ORDER BY expires_at_ms, file_id LIMIT $2"
                    ))
                    .bind(now_ms)
                    .bind(i64::from(limit))
                    .fetch_all(&self.$read)
                    .await
                    .map_err(from_sqlx)?;
                    Ok(rows.into_iter().map(CdnFileRecord::from).collect())
                }

                async fn delete_cdn_file(&self, file_id: &str) -> Result<bool, StoreError> {
                    let done = sqlx::query("DELETE FROM cdn_files WHERE file_id = $1")
                        .bind(file_id)
                        .execute(&self.$write)
                        .await
                        .map_err(from_sqlx)?;
                    Ok(done.rows_affected() > 0)
                }
            }
        }
    };
}

pub(crate) use impl_cdn_files;
