//! The S3-compatible blob store (`s3://<bucket>[/<prefix>]`), through `object_store`'s S3 client.
//!
//! A put keeps both rules of [`BlobStore`]:
//! - **bounded:** the body streams through a [`BodyMeter`]; a body of at most [`MULTIPART_THRESHOLD`]
//!   bytes is buffered and sent as one `PUT`, a longer one becomes a multipart upload of
//!   [`PART_SIZE`] parts (at most [`PARTS_IN_FLIGHT`] at once). Past the limit the put is refused
//!   with [`BlobError::TooLarge`] and a started multipart upload is aborted, so nothing is kept.
//! - **atomic:** S3 makes an object visible only when its `PUT` or its multipart `Complete` succeeds,
//!   whole; concurrent puts of one key end with one of them, whole.
//!
//! A put dropped midway (its caller went away) aborts its multipart upload in a spawned task. A process
//! that dies midway cannot: give the bucket a lifecycle rule that removes incomplete multipart uploads
//! after a day. Every request is bounded by [`S3Options::timeout`] and [`S3Options::connect_timeout`],
//! and retried at most [`MAX_RETRIES`] times within [`RETRY_TIMEOUT`]. Errors name the operation, the
//! key and what to check; credentials never appear in them (requests are signed in headers).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{BackoffConfig, ClientOptions, ObjectStoreExt, PutPayload, RetryConfig, WriteMultipart};
use souk_core::blob::{BlobBody, BlobError, BlobInfo, BlobKey, BlobStore, BodyMeter, ByteStream};

use crate::options::S3Options;

/// Bodies up to this size are sent in one `PUT`; longer ones as a multipart upload.
pub const MULTIPART_THRESHOLD: usize = 8 * 1024 * 1024;
/// The size of a multipart upload's parts (S3 wants at least 5 MiB for all but the last).
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts of one put uploading at once.
pub const PARTS_IN_FLIGHT: usize = 2;
/// Retries of one request (connection failures, 5xx, 429) before it fails.
pub const MAX_RETRIES: usize = 3;
/// No retry starts this long after a request's first attempt.
pub const RETRY_TIMEOUT: Duration = Duration::from_secs(20);

/// Blobs as objects in an S3-compatible bucket, under an optional prefix.
#[derive(Debug, Clone)]
pub struct S3BlobStore {
    store: Arc<AmazonS3>,
    bucket: String,
    prefix: Option<String>,
}

impl S3BlobStore {
    /// A store on `bucket` (objects under `prefix/` if given), with checked `options`. No request is
    /// made here: a node starts while the store is unreachable, and its puts and gets fail until it is back.
    pub fn open(bucket: &str, prefix: Option<&str>, options: &S3Options) -> Result<Self, BlobError> {
        options.check()?;
        let (Some(access_key_id), Some(secret_access_key)) = (&options.access_key_id, &options.secret_access_key) else {
            return Err(config_error(
                "s3:// needs blobs.s3_access_key_id and blobs.s3_secret_access_key".to_owned(),
            ));
        };
        let client = ClientOptions::new()
            .with_timeout(options.timeout)
            .with_connect_timeout(options.connect_timeout)
            .with_allow_http(options.allow_http);
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(2),
                base: 2.0,
            },
            max_retries: MAX_RETRIES,
            retry_timeout: RETRY_TIMEOUT,
        };
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region(options.region.as_deref().unwrap_or(crate::options::DEFAULT_S3_REGION))
            .with_access_key_id(access_key_id)
            .with_secret_access_key(secret_access_key)
            .with_allow_http(options.allow_http)
            // Path-style requests (`<endpoint>/<bucket>/<key>`): what local and self-hosted S3
            // servers understand without DNS for each bucket.
            .with_virtual_hosted_style_request(false)
            .with_client_options(client)
            .with_retry(retry);
        if let Some(endpoint) = &options.endpoint {
            builder = builder.with_endpoint(endpoint.trim_end_matches('/'));
        }
        // The builder's own messages name settings, never their values.
        let store = builder
            .build()
            .map_err(|err| config_error(format!("the S3 settings cannot be used: {err}")))?;
        Ok(S3BlobStore {
            store: Arc::new(store),
            bucket: bucket.to_owned(),
            prefix: prefix.map(str::to_owned),
        })
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The object path of a key: the prefix, then the key's checked segments.
    fn path_of(&self, key: &BlobKey) -> Result<ObjectPath, BlobError> {
        let full = match &self.prefix {
            Some(prefix) => format!("{prefix}/{key}"),
            None => key.to_string(),
        };
        ObjectPath::parse(full).map_err(|_| BlobError::InvalidKey(key.to_string()))
    }

    /// Sends a body longer than [`MULTIPART_THRESHOLD`]: the buffered head, then the rest of the
    /// stream, as a multipart upload completed only once the whole body is within the limit.
    async fn put_multipart(
        &self,
        key: &BlobKey,
        path: &ObjectPath,
        head: Vec<Bytes>,
        mut body: ByteStream<'_>,
        mut meter: BodyMeter,
    ) -> Result<BlobInfo, BlobError> {
        let upload = self.store.put_multipart(path).await.map_err(|err| self.failure("put", key, err))?;
        let mut upload = PendingUpload(Some(WriteMultipart::new_with_chunk_size(upload, PART_SIZE)));
        let written: Result<(), BlobError> = async {
            for chunk in head {
                upload.put(chunk).await.map_err(|err| self.failure("put", key, err))?;
            }
            while let Some(chunk) = body.next().await {
                let chunk = chunk?;
                meter.update(&chunk)?;
                upload.put(chunk).await.map_err(|err| self.failure("put", key, err))?;
            }
            Ok(())
        }
        .await;
        match written {
            Ok(()) => {
                upload.finish().await.map_err(|err| self.failure("put", key, err))?;
                Ok(meter.finish())
            }
            Err(err) => {
                if let Err(abort) = upload.abort().await {
                    tracing::warn!(bucket = %self.bucket, key = %key, error = %abort, "aborting a refused multipart upload failed");
                }
                Err(err)
            }
        }
    }

    /// An `object_store` error as a [`BlobError`] a person can act on.
    fn failure(&self, operation: &str, key: &BlobKey, err: object_store::Error) -> BlobError {
        let bucket = &self.bucket;
        let message = match &err {
            object_store::Error::NotFound { .. } => {
                format!("s3 {operation} of {key}: bucket {bucket:?} or object not found ({})", detail(&err))
            }
            object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => format!(
                "s3 {operation} of {key}: the store refused souk's credentials for bucket {bucket:?}; check \
                 blobs.s3_access_key_id, blobs.s3_secret_access_key and the bucket's policy ({})",
                detail(&err)
            ),
            _ => format!("s3 {operation} of {key} in bucket {bucket:?} failed: {}", detail(&err)),
        };
        BlobError::Backend(message)
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put(&self, key: &BlobKey, mut body: ByteStream<'_>, max_bytes: u64) -> Result<BlobInfo, BlobError> {
        let path = self.path_of(key)?;
        let mut meter = BodyMeter::new(max_bytes);
        let mut head = Vec::new();
        let mut buffered = 0usize;
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            meter.update(&chunk)?;
            buffered += chunk.len();
            head.push(chunk);
            if buffered > MULTIPART_THRESHOLD {
                return self.put_multipart(key, &path, head, body, meter).await;
            }
        }
        self.store
            .put(&path, PutPayload::from_iter(head))
            .await
            .map_err(|err| self.failure("put", key, err))?;
        Ok(meter.finish())
    }

    async fn get(&self, key: &BlobKey) -> Result<BlobBody, BlobError> {
        let path = self.path_of(key)?;
        let result = match self.store.get(&path).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Err(BlobError::NotFound),
            Err(err) => return Err(self.failure("get", key, err)),
        };
        let size = result.meta.size;
        let (bucket, key) = (self.bucket.clone(), key.clone());
        let stream = result.into_stream().map(move |chunk| {
            chunk.map_err(|err| BlobError::Backend(format!("s3 get of {key} in bucket {bucket:?} broke off: {}", detail(&err))))
        });
        Ok(BlobBody {
            size,
            stream: stream.boxed(),
        })
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        let path = self.path_of(key)?;
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(err) => Err(self.failure("delete", key, err)),
        }
    }

    async fn exists(&self, key: &BlobKey) -> Result<bool, BlobError> {
        let path = self.path_of(key)?;
        match self.store.head(&path).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(err) => Err(self.failure("head", key, err)),
        }
    }

    fn backend(&self) -> &'static str {
        "s3"
    }
}

/// A multipart upload being written; aborted (in a spawned task) if the put is dropped before it
/// is finished or aborted. The `Option` is `None` only once one of those took the upload.
struct PendingUpload(Option<WriteMultipart>);

impl PendingUpload {
    /// Queues a chunk, first waiting while [`PARTS_IN_FLIGHT`] parts are uploading.
    async fn put(&mut self, chunk: Bytes) -> object_store::Result<()> {
        if let Some(upload) = self.0.as_mut() {
            upload.wait_for_capacity(PARTS_IN_FLIGHT).await?;
            upload.put(chunk);
        }
        Ok(())
    }

    /// Uploads the last part and completes the upload: the object appears, whole.
    async fn finish(mut self) -> object_store::Result<()> {
        match self.0.take() {
            Some(upload) => upload.finish().await.map(drop),
            None => Ok(()),
        }
    }

    /// Stops the parts uploading and aborts the upload, so the store drops its parts.
    async fn abort(mut self) -> object_store::Result<()> {
        match self.0.take() {
            Some(upload) => upload.abort().await,
            None => Ok(()),
        }
    }
}

impl Drop for PendingUpload {
    fn drop(&mut self) {
        if let (Some(upload), Ok(runtime)) = (self.0.take(), tokio::runtime::Handle::try_current()) {
            runtime.spawn(async move {
                if let Err(err) = upload.abort().await {
                    tracing::warn!(error = %err, "aborting an abandoned multipart upload failed");
                }
            });
        }
    }
}

/// The error's text and its sources', cut to a length a log line can hold.
fn detail(err: &dyn std::error::Error) -> String {
    const MAX: usize = 600;
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(next) = source {
        let next_text = next.to_string();
        if !text.contains(&next_text) {
            text.push_str(": ");
            text.push_str(&next_text);
        }
        source = next.source();
    }
    if text.len() > MAX {
        let mut end = MAX;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

fn config_error(message: String) -> BlobError {
    BlobError::Backend(message)
}

#[cfg(test)]
#[path = "s3_tests.rs"]
mod tests;
