//! Temporary media metadata, shared: single-statement reads and writes, no transaction needed, identical on
//! both backends.

/// Expands [`MediaStore`](souk_core::store::media::MediaStore) for a backend store (parameters: see
/// [`crate::shared`]). No hooks: nothing here differs between the backends.
macro_rules! impl_media_store {
    (store: $store:ident, read: $read:ident, write: $write:ident $(,)?) => {
        mod shared {
            use super::*;

            use async_trait::async_trait;
            use souk_core::store::media::{MediaRecord, MediaStore};
            use souk_core::store::StoreError;
            use $crate::media_rows::{MediaRow, MEDIA_COLUMNS};

            #[async_trait]
            impl MediaStore for $store {
                async fn insert_media(&self, media: &MediaRecord) -> Result<(), StoreError> {
                    sqlx::query(&format!(
                        "INSERT INTO media ({MEDIA_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
                    ))
                    .bind(&media.media_id)
                    .bind(&media.appid)
                    .bind(&media.media_type)
                    .bind(&media.content_type)
                    .bind(media.size)
                    .bind(media.created_at_ms)
                    .bind(media.expires_at_ms)
                    .execute(&self.$write)
                    .await
                    .map_err(from_sqlx)?;
                    Ok(())
                }

                async fn get_media(&self, media_id: &str) -> Result<Option<MediaRecord>, StoreError> {
                    let row: Option<MediaRow> = sqlx::query_as(&format!("SELECT {MEDIA_COLUMNS} FROM media WHERE media_id = $1"))
                        .bind(media_id)
                        .fetch_optional(&self.$read)
                        .await
                        .map_err(from_sqlx)?;
                    Ok(row.map(MediaRecord::from))
                }

                async fn list_expired_media(&self, now_ms: i64, limit: u32) -> Result<Vec<MediaRecord>, StoreError> {
                    let rows: Vec<MediaRow> = sqlx::query_as(&format!(
                        "SELECT {MEDIA_COLUMNS} FROM media WHERE expires_at_ms <= $1 ORDER BY expires_at_ms, media_id LIMIT $2"
                    ))
                    .bind(now_ms)
                    .bind(i64::from(limit))
                    .fetch_all(&self.$read)
                    .await
                    .map_err(from_sqlx)?;
                    Ok(rows.into_iter().map(MediaRecord::from).collect())
                }

                async fn delete_media(&self, media_id: &str) -> Result<bool, StoreError> {
                    let done = sqlx::query("DELETE FROM media WHERE media_id = $1")
                        .bind(media_id)
                        .execute(&self.$write)
                        .await
                        .map_err(from_sqlx)?;
                    Ok(done.rows_affected() > 0)
                }
            }
        }
    };
}

pub(crate) use impl_media_store;
