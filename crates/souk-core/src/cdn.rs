//! CDN files (`wire.md` §4 `cdn`, seed 000's `CDN` method): bytes an app uploads, kept for a few days
//! and served at an unguessable URL, `<public_url>/souk/v1/cdn/<id>`, so a provider can fetch what a
//! caller marked in `data` (see [`crate::cdn_markers`]).
//!
//! The bytes go to the blob store, the metadata (owner, content type, size, hash, expiry) to the
//! durable store. An upload writes the blob first and the metadata second, so a file is never
//! served without its bytes; expired files are deleted blob first, metadata second, by housekeeping.

use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use rand::Rng;
use souk_types::Code;

use crate::blob::{BlobBody, BlobError, BlobKey, BlobStore, ByteStream};
use crate::error::Failure;
use crate::souk::Souk;
use crate::store::cdn::CdnFileRecord;

/// The default size limit of one file: 10 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 10 * 1024 * 1024;
/// The default lifetime of a file: 3 days.
pub const DEFAULT_TTL_MS: i64 = 3 * 24 * 3_600_000;
/// The path CDN URLs are served under, after the public URL.
pub const CDN_PATH: &str = "/souk/v1/cdn/";
/// Random bytes in a file id (160 bits: unguessable, so the URL is the only credential).
const FILE_ID_BYTES: usize = 20;
/// The longest content type kept.
const MAX_CONTENT_TYPE_LEN: usize = 200;
/// Expired files deleted per store call, and store calls per housekeeping round.
const SWEEP_BATCH: u32 = 500;
const SWEEP_BATCHES_PER_ROUND: usize = 20;

/// The operator's CDN settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdnSettings {
    /// The URL souk is reached at (`public_url`), without a trailing slash.
    pub public_url: String,
    /// The largest file, in bytes.
    pub max_bytes: u64,
    /// How long a file lives, in milliseconds.
    pub ttl_ms: i64,
}

impl CdnSettings {
    /// The defaults (10 MiB, 3 days) for a souk at `public_url`.
    pub fn new(public_url: impl Into<String>) -> Self {
        CdnSettings {
            public_url: public_url.into(),
            max_bytes: DEFAULT_MAX_BYTES,
            ttl_ms: DEFAULT_TTL_MS,
        }
    }
}

/// The CDN role of a [`Souk`]: settings and the blob store.
pub(crate) struct Cdn {
    settings: CdnSettings,
    pub(crate) blobs: Arc<dyn BlobStore>,
}

/// A file just uploaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdnFile {
    /// Where it is served.
    pub url: String,
    /// Seconds until it expires.
    pub expires_in_secs: i64,
    /// What was stored.
    pub record: CdnFileRecord,
}

/// A file opened for serving.
#[derive(Debug)]
pub struct OpenCdnFile {
    /// Its metadata.
    pub record: CdnFileRecord,
    /// Whole seconds it may still be cached (until it expires).
    pub max_age_secs: i64,
    /// Its bytes.
    pub body: BlobBody,
}

impl Souk {
    /// Enables CDN files: uploads go to `blobs`, URLs start with `settings.public_url`.
    #[must_use]
    pub fn with_cdn(mut self, mut settings: CdnSettings, blobs: Arc<dyn BlobStore>) -> Self {
        settings.public_url = settings.public_url.trim_end_matches('/').to_owned();
        self.cdn = Some(Arc::new(Cdn { settings, blobs }));
        self
    }

    /// The CDN settings, when CDN files are enabled.
    pub fn cdn_settings(&self) -> Option<&CdnSettings> {
        self.cdn.as_ref().map(|cdn| &cdn.settings)
    }

    fn cdn(&self) -> Result<&Cdn, Failure> {
        self.cdn
            .as_deref()
            .ok_or_else(|| Failure::new(Code::SystemError, "cdn files are not enabled on this souk"))
    }

    /// Uploads a file for `appid` from a stream, refusing it with [`Code::CdnFileTooLarge`] as soon as
    /// it passes the size limit. An empty `content_type` means `application/octet-stream`.
    pub async fn upload_cdn_file(&self, appid: &str, content_type: &str, body: ByteStream<'_>) -> Result<CdnFile, Failure> {
        let cdn = self.cdn()?;
        let content_type = check_content_type(content_type).map_err(|why| Failure::new(Code::DataFormatError, why))?;
        let file_id = new_file_id();
        let key = blob_key(&file_id)?;
        let info = cdn
            .blobs
            .put(&key, body, cdn.settings.max_bytes)
            .await
            .map_err(|err| upload_failure(&err))?;
        let now_ms = self.now_ms();
        let record = CdnFileRecord {
            file_id,
            appid: appid.to_owned(),
            content_type,
            size: i64::try_from(info.size).unwrap_or(i64::MAX),
            sha256: info.sha256,
            created_at_ms: now_ms,
            expires_at_ms: now_ms.saturating_add(cdn.settings.ttl_ms),
        };
        if let Err(err) = self.store.insert_cdn_file(&record).await {
            if let Err(blob_err) = cdn.blobs.delete(&key).await {
                tracing::warn!(key = %key, error = %blob_err, "removing the blob of a failed upload failed");
            }
            return Err(Failure::from_store(Code::SystemError, &err));
        }
        tracing::debug!(file_id = %record.file_id, appid, size = record.size, "cdn file uploaded");
        Ok(CdnFile {
            url: format!("{}{CDN_PATH}{}", cdn.settings.public_url, record.file_id),
            expires_in_secs: cdn.settings.ttl_ms / 1000,
            record,
        })
    }

    /// [`Souk::upload_cdn_file`] of bytes already in memory.
    pub async fn upload_cdn_bytes(&self, appid: &str, content_type: &str, bytes: Bytes) -> Result<CdnFile, Failure> {
        self.upload_cdn_file(appid, content_type, stream::once(async move { Ok(bytes) }).boxed())
            .await
    }

    /// Opens a file for serving. An id souk could not have made, an unknown id and an expired file
    /// are all [`Code::CdnFileNotFound`].
    pub async fn open_cdn_file(&self, file_id: &str) -> Result<OpenCdnFile, Failure> {
        let not_found = || Failure::new(Code::CdnFileNotFound, "");
        if !is_file_id(file_id) {
            return Err(not_found());
        }
        let cdn = self.cdn().map_err(|_| not_found())?;
        let record = self
            .store
            .get_cdn_file(file_id)
            .await
            .map_err(|err| Failure::from_store(Code::SystemError, &err))?
            .ok_or_else(not_found)?;
        let now_ms = self.now_ms();
        if now_ms >= record.expires_at_ms {
            return Err(not_found());
        }
        let body = match cdn.blobs.get(&blob_key(file_id)?).await {
            Ok(body) => body,
            Err(BlobError::NotFound) => {
                tracing::warn!(file_id, "a cdn file's metadata is there but its blob is not");
                return Err(not_found());
            }
            Err(err) => return Err(blob_failure(&err)),
        };
        Ok(OpenCdnFile {
            max_age_secs: (record.expires_at_ms - now_ms) / 1000,
            record,
            body,
        })
    }

    /// Deletes expired files, blob first and metadata second, so a failure leaves the metadata to
    /// retry with next round; never a blob nothing points to.
    pub(crate) async fn sweep_cdn_files(&self, now_ms: i64) {
        let Some(cdn) = self.cdn.as_deref() else {
            return;
        };
        for _ in 0..SWEEP_BATCHES_PER_ROUND {
            let expired = match self.store.list_expired_cdn_files(now_ms, SWEEP_BATCH).await {
                Ok(expired) => expired,
                Err(err) => return tracing::warn!(error = %err, "listing expired cdn files failed"),
            };
            let mut n_failed = 0_usize;
            for file in &expired {
                if let Err(err) = delete_file(self, cdn, &file.file_id).await {
                    n_failed += 1;
                    tracing::warn!(file_id = %file.file_id, error = %err, "deleting an expired cdn file failed");
                }
            }
            // Failed files come first again in the next list: stop for this round instead of looping.
            if expired.len() < SWEEP_BATCH as usize || n_failed > 0 {
                return;
            }
        }
    }
}

async fn delete_file(souk: &Souk, cdn: &Cdn, file_id: &str) -> Result<(), String> {
    if let Ok(key) = blob_key(file_id) {
        cdn.blobs.delete(&key).await.map_err(|err| err.to_string())?;
    }
    souk.store.delete_cdn_file(file_id).await.map_err(|err| err.to_string())?;
    Ok(())
}

/// A new file id: [`FILE_ID_BYTES`] random bytes in lowercase hex.
fn new_file_id() -> String {
    let mut bytes = [0u8; FILE_ID_BYTES];
    rand::rng().fill(&mut bytes);
    hex::encode(bytes)
}

/// Whether `text` could be a file id souk made (checked before any lookup).
pub fn is_file_id(text: &str) -> bool {
    text.len() == FILE_ID_BYTES * 2 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The blob key of a file: sharded by the id's first two characters, so no folder grows too large.
fn blob_key(file_id: &str) -> Result<BlobKey, Failure> {
    let shard = file_id.get(..2).unwrap_or("00");
    BlobKey::new(format!("cdn/{shard}/{file_id}")).map_err(|err| blob_failure(&err))
}

/// Checks a content type (`type/subtype` with optional parameters, printable ASCII only: it goes
/// back out as a header) and fills in the default.
pub fn check_content_type(content_type: &str) -> Result<String, String> {
    let content_type = content_type.trim();
    if content_type.is_empty() {
        return Ok("application/octet-stream".to_owned());
    }
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    let token = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b));
    let well_formed = content_type.len() <= MAX_CONTENT_TYPE_LEN
        && content_type.bytes().all(|b| b == b' ' || b == b'\t' || b.is_ascii_graphic())
        && essence.split_once('/').is_some_and(|(kind, subtype)| token(kind) && token(subtype));
    if well_formed {
        Ok(content_type.to_owned())
    } else {
        Err(format!("{content_type:?} is not a content type like image/png"))
    }
}

fn upload_failure(err: &BlobError) -> Failure {
    match err {
        BlobError::TooLarge { limit } => Failure::new(Code::CdnFileTooLarge, format!("the file is larger than {limit} bytes")),
        BlobError::Body(why) => Failure::new(Code::DataFormatError, format!("the upload could not be read: {why}")),
        other => blob_failure(other),
    }
}

fn blob_failure(err: &BlobError) -> Failure {
    tracing::error!(error = %err, "blob storage call failed");
    Failure::new(Code::SystemError, "blob storage error")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_ids_are_long_random_hex() {
        let id = new_file_id();
        assert!(is_file_id(&id), "{id}");
        assert_ne!(id, new_file_id());
        for bad in ["", "../../etc/passwd", &id[1..], &id.to_uppercase(), &format!("{}g", &id[1..])] {
            assert!(!is_file_id(bad), "{bad}");
        }
        assert_eq!(blob_key(&id).unwrap().as_str(), format!("cdn/{}/{id}", &id[..2]));
    }

    #[test]
    fn content_types_are_checked() {
        let check = |text: &str| check_content_type(text).ok();
        assert_eq!(check(""), Some("application/octet-stream".to_owned()));
        assert_eq!(check(" image/png "), Some("image/png".to_owned()));
        assert_eq!(check("text/plain; charset=utf-8"), Some("text/plain; charset=utf-8".to_owned()));
        assert_eq!(check("application/vnd.api+json"), Some("application/vnd.api+json".to_owned()));
        for bad in [
            "png",
            "image/",
            "/png",
            "text/plain\r\nSet-Cookie: a=b",
            "ima ge/png",
            "画像/png",
            &"a/".repeat(101),
        ] {
            assert_eq!(check(bad), None, "{bad:?}");
        }
    }
}
