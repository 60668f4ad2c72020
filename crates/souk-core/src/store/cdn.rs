//! CDN files in storage: the [`CdnFiles`] trait and the record it keeps. The bytes themselves live in
//! the blob store ([`crate::blob`]); the durable store keeps what is needed to serve and expire them.

use async_trait::async_trait;

use super::StoreError;

/// One uploaded CDN file's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdnFileRecord {
    /// The unguessable id in its URL (lowercase hex).
    pub file_id: String,
    /// The app that uploaded it.
    pub appid: String,
    /// The content type it is served with.
    pub content_type: String,
    /// Its length in bytes.
    pub size: i64,
    /// SHA-256 of its bytes, lowercase hex.
    pub sha256: String,
    /// Upload time.
    pub created_at_ms: i64,
    /// From this time on it is gone (not served, then deleted by housekeeping).
    pub expires_at_ms: i64,
}

/// The metadata of CDN files.
#[async_trait]
pub trait CdnFiles: Send + Sync {
    /// Records a file; `AlreadyExists` if the id is taken.
    async fn insert_cdn_file(&self, file: &CdnFileRecord) -> Result<(), StoreError>;
    /// One file, expired or not (the caller decides what expiry means).
    async fn get_cdn_file(&self, file_id: &str) -> Result<Option<CdnFileRecord>, StoreError>;
    /// Up to `limit` files with `expires_at_ms <= now_ms`, soonest expiry first (then by id).
    async fn list_expired_cdn_files(&self, now_ms: i64, limit: u32) -> Result<Vec<CdnFileRecord>, StoreError>;
    /// Forgets a file; answers whether it was there.
    async fn delete_cdn_file(&self, file_id: &str) -> Result<bool, StoreError>;
}
