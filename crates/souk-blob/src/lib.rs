//! Blob storage backends of souk, implementing [`souk_core::blob::BlobStore`].
//!
//! [`open`] picks the backend from `blobs.url`: `file://<dir>` is a local folder ([`LocalBlobStore`]),
//! the embedded default (`<data-dir>/blobs`), which several nodes may also share over a network
//! filesystem. `s3://<bucket>[/<prefix>]` will come through `object_store` in a later version.
//!
//! **Architecture invariant:** no HTTP, no SQL. This crate knows files and, later, object stores.

use std::sync::Arc;

use souk_core::blob::{BlobError, BlobStore};

mod local;

pub use local::LocalBlobStore;

/// The URL schemes [`open`] understands.
pub const SUPPORTED_SCHEMES: &[&str] = &["file://"];

/// Opens the blob store named by `url`, creating a local folder if it is missing.
pub fn open(url: &str) -> Result<Arc<dyn BlobStore>, BlobError> {
    if let Some(dir) = url.strip_prefix("file://") {
        if dir.is_empty() {
            return Err(BlobError::Backend(
                "file:// needs a directory, as file:///var/lib/souk/blobs".to_owned(),
            ));
        }
        return Ok(Arc::new(LocalBlobStore::open(dir)?));
    }
    Err(BlobError::Backend(format!(
        "unsupported blob URL scheme (supported: {})",
        SUPPORTED_SCHEMES.join(", ")
    )))
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
        let Err(BlobError::Backend(message)) = open("s3://bucket/prefix") else {
            panic!("s3 is not available yet");
        };
        assert!(message.contains("file://"), "{message}");
    }
}
