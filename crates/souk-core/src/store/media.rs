//! Temporary media in storage (`wire.md` §2, upload media and get media): the [`MediaStore`] trait and
//! the record it keeps. The bytes live in the blob store ([`crate::blob`]); the durable store keeps
//! who owns them, what they are and when they expire.

use async_trait::async_trait;

use super::StoreError;

/// One uploaded temporary media file's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRecord {
    /// The unguessable `media_id` (64 characters of `[0-9A-Za-z]`).
    pub media_id: String,
    /// The app that uploaded it; no other app may read it.
    pub appid: String,
    /// The `type` it was uploaded as (`image`).
    pub media_type: String,
    /// The content type sniffed from its bytes (`image/png`, ...).
    pub content_type: String,
    /// Its length in bytes.
    pub size: i64,
    /// Upload time.
    pub created_at_ms: i64,
    /// From this time on it is gone (40007, then deleted by housekeeping).
    pub expires_at_ms: i64,
}

/// The metadata of temporary media.
#[async_trait]
pub trait MediaStore: Send + Sync {
    /// Records a media file; `AlreadyExists` if the id is taken.
    async fn insert_media(&self, media: &MediaRecord) -> Result<(), StoreError>;
    /// One media file, expired or not (the caller decides what expiry means).
    async fn get_media(&self, media_id: &str) -> Result<Option<MediaRecord>, StoreError>;
    /// Up to `limit` media with `expires_at_ms <= now_ms`, soonest expiry first (then by id).
    async fn list_expired_media(&self, now_ms: i64, limit: u32) -> Result<Vec<MediaRecord>, StoreError>;
    /// Forgets a media file; answers whether it was there.
    async fn delete_media(&self, media_id: &str) -> Result<bool, StoreError>;
}
