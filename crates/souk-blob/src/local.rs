//! The local-folder blob store: one file per key under a root directory.
//!
//! A put streams into a uniquely named file in `<root>/.tmp`, bounded by its limit, syncs it, then
//! renames it into place: on one filesystem a rename is atomic, so a reader opens either the old
//! blob, the new one, or none, never a prefix. No [`BlobKey`] segment may start with a dot, so keys
//! never reach `.tmp`, and a path is built only from a key's checked segments.

use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::stream::{self, StreamExt};
use rand::Rng;
use souk_core::blob::{BlobBody, BlobError, BlobInfo, BlobKey, BlobStore, BodyMeter, ByteStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Where puts are written before they are renamed into place.
const TEMP_DIR: &str = ".tmp";
/// Temporary files older than this were left by a process that died mid-put; they are removed at open.
const STALE_TEMP: Duration = Duration::from_secs(3600);
/// The size of the chunks a get reads.
const READ_CHUNK: usize = 64 * 1024;

/// Blobs as files under a root directory (`file://<dir>`).
#[derive(Debug, Clone)]
pub struct LocalBlobStore {
    root: PathBuf,
    temp: PathBuf,
}

impl LocalBlobStore {
    /// Opens (creating if missing) the folder `root`, and removes temporary files left by puts of
    /// a process that died more than an hour ago.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, BlobError> {
        let root = root.into();
        let temp = root.join(TEMP_DIR);
        std::fs::create_dir_all(&temp).map_err(|err| io_failure("create", &temp, &err))?;
        let store = LocalBlobStore { root, temp };
        store.remove_stale_temp_files();
        Ok(store)
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file of a key. Every segment is checked again to be one plain path component, so even a
    /// key built some other way cannot name a file outside the root.
    fn path_of(&self, key: &BlobKey) -> Result<PathBuf, BlobError> {
        let mut path = self.root.clone();
        for segment in key.segments() {
            let mut components = Path::new(segment).components();
            match (components.next(), components.next()) {
                (Some(Component::Normal(_)), None) if !segment.starts_with('.') => path.push(segment),
                _ => return Err(BlobError::InvalidKey(key.to_string())),
            }
        }
        Ok(path)
    }

    /// Streams `body` into a new temporary file, bounded by `max_bytes`, and syncs it.
    async fn write_temp(&self, temp_path: &Path, mut body: ByteStream<'_>, max_bytes: u64) -> Result<BlobInfo, BlobError> {
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(temp_path)
            .await
            .map_err(|err| io_failure("create", temp_path, &err))?;
        let mut meter = BodyMeter::new(max_bytes);
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            meter.update(&chunk)?;
            file.write_all(&chunk).await.map_err(|err| io_failure("write", temp_path, &err))?;
        }
        file.flush().await.map_err(|err| io_failure("write", temp_path, &err))?;
        file.sync_all().await.map_err(|err| io_failure("sync", temp_path, &err))?;
        Ok(meter.finish())
    }

    /// Moves a finished temporary file to the key's path.
    async fn publish(&self, temp_path: &Path, path: &Path) -> Result<(), BlobError> {
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|err| io_failure("create", parent, &err))?;
        }
        tokio::fs::rename(temp_path, path)
            .await
            .map_err(|err| io_failure("rename", path, &err))
    }

    fn remove_stale_temp_files(&self) {
        let Ok(entries) = std::fs::read_dir(&self.temp) else {
            return;
        };
        let now = SystemTime::now();
        for entry in entries.flatten() {
            let modified = entry.metadata().and_then(|meta| meta.modified());
            let stale = modified.is_ok_and(|at| now.duration_since(at).unwrap_or_default() > STALE_TEMP);
            if stale {
                if let Err(err) = std::fs::remove_file(entry.path()) {
                    tracing::warn!(path = %entry.path().display(), error = %err, "removing a stale temporary blob failed");
                }
            }
        }
    }
}

#[async_trait]
impl BlobStore for LocalBlobStore {
    async fn put(&self, key: &BlobKey, body: ByteStream<'_>, max_bytes: u64) -> Result<BlobInfo, BlobError> {
        let path = self.path_of(key)?;
        let temp_path = self.temp.join(format!("{}.part", random_hex(16)));
        let written = match self.write_temp(&temp_path, body, max_bytes).await {
            Ok(info) => self.publish(&temp_path, &path).await.map(|()| info),
            Err(err) => Err(err),
        };
        if written.is_err() {
            // Nothing of a failed or refused put is kept.
            let _ = tokio::fs::remove_file(&temp_path).await;
        }
        written
    }

    async fn get(&self, key: &BlobKey) -> Result<BlobBody, BlobError> {
        let path = self.path_of(key)?;
        let file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(err) if err.kind() == ErrorKind::NotFound => return Err(BlobError::NotFound),
            Err(err) => return Err(io_failure("open", &path, &err)),
        };
        // The length of the open file, which a later put cannot change: puts replace the file by
        // rename, they never write into it.
        let size = file.metadata().await.map_err(|err| io_failure("stat", &path, &err))?.len();
        Ok(BlobBody {
            size,
            stream: read_chunks(file, path).boxed(),
        })
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        let path = self.path_of(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == ErrorKind::NotFound => Ok(()),
            Err(err) => Err(io_failure("delete", &path, &err)),
        }
    }

    async fn exists(&self, key: &BlobKey) -> Result<bool, BlobError> {
        let path = self.path_of(key)?;
        tokio::fs::try_exists(&path).await.map_err(|err| io_failure("stat", &path, &err))
    }

    fn backend(&self) -> &'static str {
        "file"
    }
}

/// The file's bytes in chunks of [`READ_CHUNK`].
fn read_chunks(file: tokio::fs::File, path: PathBuf) -> impl futures::Stream<Item = Result<Bytes, BlobError>> + Send + 'static {
    stream::try_unfold((file, path), |(mut file, path)| async move {
        let mut buffer = BytesMut::with_capacity(READ_CHUNK);
        let n_read = file.read_buf(&mut buffer).await.map_err(|err| io_failure("read", &path, &err))?;
        if n_read == 0 {
            return Ok(None);
        }
        Ok(Some((buffer.freeze(), (file, path))))
    })
}

fn io_failure(what: &str, path: &Path, err: &std::io::Error) -> BlobError {
    BlobError::Backend(format!("{what} {}: {err}", path.display()))
}

fn random_hex(n_bytes: usize) -> String {
    let mut bytes = vec![0u8; n_bytes];
    rand::rng().fill(bytes.as_mut_slice());
    hex::encode(bytes)
}

#[cfg(test)]
#[path = "local_tests.rs"]
mod tests;
