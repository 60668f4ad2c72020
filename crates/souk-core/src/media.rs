//! Temporary media (`wire.md` §2 upload media / get media, `wechat-wire.md` §5.3–§5.4): images an app
//! uploads for customer-service messages (and built-ins' results later), kept 3 days under an
//! unguessable `media_id` and readable only by the app that owns them.
//!
//! The bytes go to the blob store (the one CDN files use), under `media/<xx>/<media_id>`; the metadata
//! to the durable store ([`crate::store::media`]). An upload writes the blob first and the metadata
//! second, so a media id is never answered without its bytes. Expiry is enforced on read (40007 from
//! the expiry instant on) and expired media are deleted by housekeeping, blob first.
//!
//! What the bytes are is decided by the caller, from their content (the server sniffs them with
//! `souk-builtins`); this module keeps the rules that need no image code: the type, the size, the
//! empty part, ownership and expiry.

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use rand::Rng;
use souk_types::Code;

use crate::blob::{BlobBody, BlobError, BlobKey, BlobStore};
use crate::error::Failure;
use crate::souk::Souk;
use crate::store::media::MediaRecord;

/// How long a media file lives: 3 days (`wechat-wire.md` §5.3).
pub const MEDIA_TTL_MS: i64 = 3 * 24 * 3_600_000;
/// The largest image: 10 MB, the public platform's limit for image temp media (souk's choice where
/// `wechat-wire.md` §5.3 gives no number; the 2 MB limit of §7 is for `/cv/img/*` inputs only).
pub const MAX_IMAGE_BYTES: usize = 10 * 1024 * 1024;
/// The only `type` a mini-program uploads (`wechat-wire.md` §5.3).
pub const IMAGE_TYPE: &str = "image";
/// Characters of a media id: 64 of `[0-9A-Za-z]` (about 381 random bits), as long as WeChat's.
const MEDIA_ID_LEN: usize = 64;
const MEDIA_ID_ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Expired media deleted per store call, and store calls per housekeeping round.
const SWEEP_BATCH: u32 = 500;
const SWEEP_BATCHES_PER_ROUND: usize = 20;

/// An image to keep, its format already sniffed from its content by the caller.
#[derive(Debug, Clone)]
pub struct MediaUpload {
    /// The bytes.
    pub bytes: Bytes,
    /// The sniffed content type (`image/png`, ...).
    pub content_type: &'static str,
}

/// A media file opened for download.
#[derive(Debug)]
pub struct OpenMedia {
    /// Its metadata.
    pub record: MediaRecord,
    /// Its bytes.
    pub body: BlobBody,
}

/// Checks the `type` of an upload: only `image` (40004 otherwise).
pub fn check_media_type(media_type: &str) -> Result<(), Failure> {
    if media_type == IMAGE_TYPE {
        Ok(())
    } else {
        Err(Failure::new(Code::MediaTypeInvalid, format!("type {media_type:?} is not image")))
    }
}

/// Checks an upload's size: empty is 41005 (wechatpy's retries send an empty part, `wechat-wire.md`
/// §10.4, and must not succeed), past [`MAX_IMAGE_BYTES`] is 40006.
pub fn check_media_size(len: usize) -> Result<(), Failure> {
    if len == 0 {
        return Err(Failure::new(Code::MediaDataMissing, "the media part is empty"));
    }
    if len > MAX_IMAGE_BYTES {
        return Err(Failure::new(
            Code::MediaFileSizeInvalid,
            format!("an image is at most {MAX_IMAGE_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// The file extension of a content type souk keeps (`jpg` for JPEG, as WeChat names downloads).
pub fn extension_of(content_type: &str) -> &'static str {
    match content_type {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/gif" => "gif",
        "image/bmp" => "bmp",
        "image/webp" => "webp",
        _ => "bin",
    }
}

/// Whether `text` could be a media id souk made (checked before any lookup).
pub fn is_media_id(text: &str) -> bool {
    text.len() == MEDIA_ID_LEN && text.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl Souk {
    /// Keeps an image for `appid` for 3 days and answers its record (`media_id`, `created_at_ms`).
    pub async fn upload_temp_media(&self, appid: &str, media_type: &str, upload: MediaUpload) -> Result<MediaRecord, Failure> {
        check_media_type(media_type)?;
        check_media_size(upload.bytes.len())?;
        let blobs = self.media_blobs()?;
        let media_id = new_media_id();
        let key = blob_key(&media_id)?;
        let size = i64::try_from(upload.bytes.len()).unwrap_or(i64::MAX);
        let body = upload.bytes;
        blobs
            .put(&key, stream::once(async move { Ok(body) }).boxed(), MAX_IMAGE_BYTES as u64)
            .await
            .map_err(|err| blob_failure(&err))?;
        let now_ms = self.now_ms();
        let record = MediaRecord {
            media_id,
            appid: appid.to_owned(),
            media_type: media_type.to_owned(),
            content_type: upload.content_type.to_owned(),
            size,
            created_at_ms: now_ms,
            expires_at_ms: now_ms.saturating_add(MEDIA_TTL_MS),
        };
        if let Err(err) = self.store.insert_media(&record).await {
            if let Err(blob_err) = blobs.delete(&key).await {
                tracing::warn!(key = %key, error = %blob_err, "removing the blob of a failed media upload failed");
            }
            return Err(Failure::from_store(Code::SystemError, &err));
        }
        tracing::debug!(media_id = %record.media_id, appid, size, "temp media uploaded");
        Ok(record)
    }

    /// Opens `appid`'s media file. A malformed, unknown, expired or another app's id is 40007, all
    /// alike, so ids of other apps cannot be probed.
    pub async fn open_temp_media(&self, appid: &str, media_id: &str) -> Result<OpenMedia, Failure> {
        let invalid = || Failure::new(Code::MediaIdInvalid, "");
        if !is_media_id(media_id) {
            return Err(invalid());
        }
        let record = self
            .store
            .get_media(media_id)
            .await
            .map_err(|err| Failure::from_store(Code::SystemError, &err))?
            .ok_or_else(invalid)?;
        if record.appid != appid || self.now_ms() >= record.expires_at_ms {
            return Err(invalid());
        }
        let blobs = self.media_blobs().map_err(|_| invalid())?;
        let body = match blobs.get(&blob_key(media_id)?).await {
            Ok(body) => body,
            Err(BlobError::NotFound) => {
                tracing::warn!(media_id, "a media file's metadata is there but its blob is not");
                return Err(invalid());
            }
            Err(err) => return Err(blob_failure(&err)),
        };
        Ok(OpenMedia { record, body })
    }

    /// Deletes expired media, blob first and metadata second, so a failure leaves the metadata to
    /// retry with next round; never a blob nothing points to.
    pub(crate) async fn sweep_media(&self, now_ms: i64) {
        let Ok(blobs) = self.media_blobs() else {
            return;
        };
        for _ in 0..SWEEP_BATCHES_PER_ROUND {
            let expired = match self.store.list_expired_media(now_ms, SWEEP_BATCH).await {
                Ok(expired) => expired,
                Err(err) => return tracing::warn!(error = %err, "listing expired temp media failed"),
            };
            let mut n_failed = 0_usize;
            for media in &expired {
                if let Err(err) = delete_media(self, blobs, &media.media_id).await {
                    n_failed += 1;
                    tracing::warn!(media_id = %media.media_id, error = %err, "deleting expired temp media failed");
                }
            }
            // Failed media come first again in the next list: stop for this round instead of looping.
            if expired.len() < SWEEP_BATCH as usize || n_failed > 0 {
                return;
            }
        }
    }

    /// The blob store media share with CDN files.
    fn media_blobs(&self) -> Result<&dyn BlobStore, Failure> {
        self.cdn
            .as_deref()
            .map(|cdn| cdn.blobs.as_ref())
            .ok_or_else(|| Failure::new(Code::SystemError, "no blob store is configured on this souk"))
    }
}

async fn delete_media(souk: &Souk, blobs: &dyn BlobStore, media_id: &str) -> Result<(), String> {
    if let Ok(key) = blob_key(media_id) {
        blobs.delete(&key).await.map_err(|err| err.to_string())?;
    }
    souk.store.delete_media(media_id).await.map_err(|err| err.to_string())?;
    Ok(())
}

/// A new media id: [`MEDIA_ID_LEN`] random characters of `[0-9A-Za-z]`.
fn new_media_id() -> String {
    let mut rng = rand::rng();
    (0..MEDIA_ID_LEN)
        .map(|_| char::from(MEDIA_ID_ALPHABET[rng.random_range(0..MEDIA_ID_ALPHABET.len())]))
        .collect()
}

/// The blob key of a media file: sharded by the id's first two characters.
fn blob_key(media_id: &str) -> Result<BlobKey, Failure> {
    let shard = media_id.get(..2).unwrap_or("00");
    BlobKey::new(format!("media/{shard}/{media_id}")).map_err(|err| blob_failure(&err))
}

fn blob_failure(err: &BlobError) -> Failure {
    tracing::error!(error = %err, "blob storage call failed");
    Failure::new(Code::SystemError, "blob storage error")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_ids_are_long_and_random() {
        let id = new_media_id();
        assert!(is_media_id(&id), "{id}");
        assert_ne!(id, new_media_id());
        for bad in ["", "../../etc/passwd", &id[1..], &format!("{}-", &id[1..])] {
            assert!(!is_media_id(bad), "{bad}");
        }
        assert_eq!(blob_key(&id).unwrap().as_str(), format!("media/{}/{id}", &id[..2]));
    }

    #[test]
    fn type_and_size_rules() {
        assert!(check_media_type("image").is_ok());
        for bad in ["voice", "video", "thumb", "", "IMAGE"] {
            assert_eq!(check_media_type(bad).unwrap_err().code, Code::MediaTypeInvalid, "{bad}");
        }
        assert_eq!(check_media_size(0).unwrap_err().code, Code::MediaDataMissing);
        assert!(check_media_size(MAX_IMAGE_BYTES).is_ok());
        assert_eq!(check_media_size(MAX_IMAGE_BYTES + 1).unwrap_err().code, Code::MediaFileSizeInvalid);
        assert_eq!(extension_of("image/jpeg"), "jpg");
        assert_eq!(extension_of("image/webp"), "webp");
    }
}
