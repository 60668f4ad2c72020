//! Blob storage backends of souk, implementing [`souk_core::blob::BlobStore`].
//!
//! [`open_with`] picks the backend from `blobs.url`: `file://<dir>` is a local folder
//! ([`LocalBlobStore`]), the embedded default (`<data-dir>/blobs`), which several nodes may also share
//! over a network filesystem; `s3://<bucket>[/<prefix>]` is an S3-compatible store ([`S3BlobStore`],
//! through `object_store`), reached with the settings in [`BlobOptions`].
//!
//! **Architecture invariant:** no SQL, no web framework, no other storage role. The S3 backend speaks
//! HTTP only through `object_store`'s client; this crate serves nothing.

use std::sync::Arc;

use souk_core::blob::{BlobError, BlobStore};

mod local;
mod options;
mod s3;

pub use local::LocalBlobStore;
pub use options::{parse_s3_url, BlobOptions, S3Options, DEFAULT_S3_CONNECT_TIMEOUT, DEFAULT_S3_REGION, DEFAULT_S3_TIMEOUT};
pub use s3::{S3BlobStore, MAX_RETRIES, MULTIPART_THRESHOLD, PARTS_IN_FLIGHT, PART_SIZE, RETRY_TIMEOUT};

/// The URL schemes [`open_with`] understands.
pub const SUPPORTED_SCHEMES: &[&str] = &["file://", "s3://"];

/// Opens the blob store named by `url` with no other settings: enough for `file://`.
pub fn open(url: &str) -> Result<Arc<dyn BlobStore>, BlobError> {
    open_with(url, &BlobOptions::default())
}

/// Opens the blob store named by `url`: a local folder (created if missing) or an S3 bucket (no
/// request is made until the first use).
pub fn open_with(url: &str, options: &BlobOptions) -> Result<Arc<dyn BlobStore>, BlobError> {
    check(url, options)?;
    if let Some(dir) = url.strip_prefix("file://") {
        return Ok(Arc::new(LocalBlobStore::open(dir)?));
    }
    if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, prefix) = parse_s3_url(rest)?;
        return Ok(Arc::new(S3BlobStore::open(&bucket, prefix.as_deref(), &options.s3)?));
    }
    Err(unsupported())
}

/// Checks `url` and `options` without opening anything (for validating a configuration).
pub fn check(url: &str, options: &BlobOptions) -> Result<(), BlobError> {
    if let Some(dir) = url.strip_prefix("file://") {
        if dir.is_empty() {
            return Err(BlobError::Backend(
                "file:// needs a directory, as file:///var/lib/souk/blobs".to_owned(),
            ));
        }
        if options.has_s3_settings() {
            return Err(BlobError::Backend(
                "blobs.s3_* settings are given but blobs.url is not s3://".to_owned(),
            ));
        }
        return Ok(());
    }
    if let Some(rest) = url.strip_prefix("s3://") {
        parse_s3_url(rest)?;
        options.s3.check()?;
        if options.s3.access_key_id.is_none() {
            return Err(BlobError::Backend(
                "blobs.url s3:// needs blobs.s3_access_key_id and blobs.s3_secret_access_key".to_owned(),
            ));
        }
        return Ok(());
    }
    Err(unsupported())
}

fn unsupported() -> BlobError {
    BlobError::Backend(format!("unsupported blob URL scheme (supported: {})", SUPPORTED_SCHEMES.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&format!("file://{}", dir.path().display())).unwrap();
        assert_eq!(store.backend(), "file");
        assert!(matches!(open("file://"), Err(BlobError::Backend(_))));
        let Err(BlobError::Backend(message)) = open("ftp://host/dir") else {
            panic!("ftp is not a blob store");
        };
        assert!(message.contains("file://") && message.contains("s3://"), "{message}");
        let Err(BlobError::Backend(message)) = open("s3://bucket/prefix") else {
            panic!("s3 needs keys");
        };
        assert!(message.contains("blobs.s3_access_key_id"), "{message}");
    }
}
