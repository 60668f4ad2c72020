//! The `cdn_files` row as both backends read it, and its mapping to [`CdnFileRecord`].

use souk_core::store::cdn::CdnFileRecord;

/// Columns of `cdn_files`, in table order.
pub(crate) const CDN_FILE_COLUMNS: &str = "file_id, appid, content_type, size, sha256, created_at_ms, expires_at_ms";

/// A row of `cdn_files`.
#[derive(sqlx::FromRow)]
pub(crate) struct CdnFileRow {
    file_id: String,
    appid: String,
    content_type: String,
    size: i64,
    sha256: String,
    created_at_ms: i64,
    expires_at_ms: i64,
}

impl From<CdnFileRow> for CdnFileRecord {
    fn from(row: CdnFileRow) -> Self {
        CdnFileRecord {
            file_id: row.file_id,
            appid: row.appid,
            content_type: row.content_type,
            size: row.size,
            sha256: row.sha256,
            created_at_ms: row.created_at_ms,
            expires_at_ms: row.expires_at_ms,
        }
    }
}
