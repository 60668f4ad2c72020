//! The blob storage role, as a trait: bytes kept under a key (CDN files, temp media, superresolution
//! results). Backends live in `souk-blob` (a local folder, or an S3-compatible bucket through
//! `object_store`) and are chosen from `blobs.url` at start.
//!
//! The trait is shaped like `object_store`'s (put a payload under a path, get it back as a stream with
//! its length, delete, head), so an S3 backend is a thin adapter. Two rules every backend keeps:
//! - **A put is atomic.** Readers see no blob or the whole blob, never a prefix; a failed or refused
//!   put leaves nothing behind.
//! - **A put is bounded.** The body is read as a stream and refused with [`BlobError::TooLarge`] as
//!   soon as more than the limit has arrived, so nothing beyond the limit is ever buffered or kept.

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use sha2::{Digest, Sha256};

/// The longest key a backend accepts.
pub const MAX_KEY_LEN: usize = 256;

/// A stream of body chunks. A put may borrow its body (a multipart field of a request being read);
/// a get hands out a `'static` one.
pub type ByteStream<'a> = BoxStream<'a, Result<Bytes, BlobError>>;

/// A blob's key: `/`-separated segments of `[A-Za-z0-9_-]`, possibly with inner dots, never `.` or
/// `..` or a leading dot, at most [`MAX_KEY_LEN`] bytes. Only a valid key can be built, so no key can
/// climb out of a backend's folder or prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlobKey(String);

impl BlobKey {
    /// Checks and wraps a key.
    pub fn new(key: impl Into<String>) -> Result<BlobKey, BlobError> {
        let key = key.into();
        if key.is_empty() || key.len() > MAX_KEY_LEN || !key.split('/').all(segment_is_valid) {
            return Err(BlobError::InvalidKey(key));
        }
        Ok(BlobKey(key))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key's segments, in order.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }
}

impl std::fmt::Display for BlobKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn segment_is_valid(segment: &str) -> bool {
    !segment.is_empty()
        && !segment.starts_with('.')
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// What a put kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    /// Bytes stored.
    pub size: u64,
    /// SHA-256 of the bytes, lowercase hex.
    pub sha256: String,
}

/// A blob being read.
pub struct BlobBody {
    /// Its length in bytes (for `Content-Length`).
    pub size: u64,
    /// Its bytes.
    pub stream: ByteStream<'static>,
}

impl std::fmt::Debug for BlobBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobBody").field("size", &self.size).finish_non_exhaustive()
    }
}

/// A blob storage failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlobError {
    /// No blob under that key.
    #[error("blob not found")]
    NotFound,
    /// The body is longer than the put's limit; nothing was kept.
    #[error("the body is larger than {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// The key is not a valid [`BlobKey`].
    #[error("invalid blob key {0:?}")]
    InvalidKey(String),
    /// The body stream failed (the sender went away, a multipart field was malformed, ...).
    #[error("the body could not be read: {0}")]
    Body(String),
    /// The backend failed (disk full, permissions, unreachable); the detail is for the log.
    #[error("blob storage error: {0}")]
    Backend(String),
}

/// Bytes under keys.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Stores `body` under `key`, replacing any blob there, atomically. Refuses with
    /// [`BlobError::TooLarge`] once more than `max_bytes` arrived, keeping nothing.
    async fn put(&self, key: &BlobKey, body: ByteStream<'_>, max_bytes: u64) -> Result<BlobInfo, BlobError>;
    /// The blob under `key`, as a stream with its length; [`BlobError::NotFound`] if there is none.
    async fn get(&self, key: &BlobKey) -> Result<BlobBody, BlobError>;
    /// Deletes the blob under `key`; deleting a missing blob is not an error.
    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError>;
    /// Whether a blob is stored under `key`.
    async fn exists(&self, key: &BlobKey) -> Result<bool, BlobError>;
    /// The backend's name for logs (`file`, `s3`).
    fn backend(&self) -> &'static str;

    /// [`BlobStore::put`] of bytes already in memory.
    async fn put_bytes(&self, key: &BlobKey, bytes: Bytes, max_bytes: u64) -> Result<BlobInfo, BlobError> {
        self.put(key, stream::once(async move { Ok(bytes) }).boxed(), max_bytes).await
    }

    /// [`BlobStore::get`], read whole into memory (for small blobs and tests).
    async fn get_bytes(&self, key: &BlobKey) -> Result<Bytes, BlobError> {
        let mut blob = self.get(key).await?;
        let mut bytes = Vec::with_capacity(usize::try_from(blob.size).unwrap_or(0).min(1 << 20));
        while let Some(chunk) = blob.stream.next().await {
            bytes.extend_from_slice(&chunk?);
        }
        Ok(Bytes::from(bytes))
    }
}

/// Counts, hashes and bounds a body as its chunks go by: the part of a put every backend shares.
#[derive(Debug, Clone)]
pub struct BodyMeter {
    max_bytes: u64,
    size: u64,
    hasher: Sha256,
}

impl BodyMeter {
    /// A meter refusing bodies longer than `max_bytes`.
    pub fn new(max_bytes: u64) -> Self {
        BodyMeter {
            max_bytes,
            size: 0,
            hasher: Sha256::new(),
        }
    }

    /// Accounts for one chunk; [`BlobError::TooLarge`] once the total passes the limit.
    pub fn update(&mut self, chunk: &[u8]) -> Result<(), BlobError> {
        self.size = self.size.saturating_add(chunk.len() as u64);
        if self.size > self.max_bytes {
            return Err(BlobError::TooLarge { limit: self.max_bytes });
        }
        self.hasher.update(chunk);
        Ok(())
    }

    /// The size and hash of everything seen.
    pub fn finish(self) -> BlobInfo {
        BlobInfo {
            size: self.size,
            sha256: hex::encode(self.hasher.finalize()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_climb_out() {
        for good in ["cdn/ab/0123abcd", "a", "x/y.bin", "A-b_c/d.e.f"] {
            assert!(BlobKey::new(good).is_ok(), "{good}");
        }
        let long = "a".repeat(MAX_KEY_LEN + 1);
        for bad in [
            "", "/", "/abs", "a/", "a//b", "..", "a/../b", ".", "./a", ".hidden", "a\\b", "a b", "c:", "é", "a/\0", &long,
        ] {
            assert_eq!(BlobKey::new(bad), Err(BlobError::InvalidKey(bad.to_owned())), "{bad:?}");
        }
    }

    #[test]
    fn meter_counts_hashes_and_bounds() {
        let mut meter = BodyMeter::new(5);
        meter.update(b"ab").unwrap();
        meter.update(b"c").unwrap();
        let info = meter.clone().finish();
        assert_eq!(info.size, 3);
        assert_eq!(info.sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        meter.update(b"de").unwrap();
        assert_eq!(meter.update(b"f"), Err(BlobError::TooLarge { limit: 5 }));
    }
}
