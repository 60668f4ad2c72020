//! The `media` row as both backends read it, and its mapping to [`MediaRecord`].

use souk_core::store::media::MediaRecord;

/// Columns of `media`, in table order.
pub(crate) const MEDIA_COLUMNS: &str = "media_id, appid, media_type, content_type, size, created_at_ms, expires_at_ms";

/// A row of `media`.
#[derive(sqlx::FromRow)]
pub(crate) struct MediaRow {
    media_id: String,
    appid: String,
    media_type: String,
    content_type: String,
    size: i64,
    created_at_ms: i64,
    expires_at_ms: i64,
}

impl From<MediaRow> for MediaRecord {
    fn from(row: MediaRow) -> Self {
        MediaRecord {
            media_id: row.media_id,
            appid: row.appid,
            media_type: row.media_type,
            content_type: row.content_type,
            size: row.size,
            created_at_ms: row.created_at_ms,
            expires_at_ms: row.expires_at_ms,
        }
    }
}
