//! Tests of the local-folder blob store: round trip, the size limit, atomic replacement, keys that
//! try to leave the root, and temporary files left by a dead process.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use souk_core::blob::{BlobError, BlobKey, BlobStore, ByteStream};
use tokio::sync::oneshot;

use super::LocalBlobStore;

fn key(text: &str) -> BlobKey {
    BlobKey::new(text).unwrap()
}

fn store() -> (tempfile::TempDir, LocalBlobStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalBlobStore::open(dir.path().join("blobs")).unwrap();
    (dir, store)
}

fn chunks(parts: &[&'static [u8]]) -> ByteStream<'static> {
    let parts: Vec<_> = parts.iter().map(|part| Ok(Bytes::from_static(part))).collect();
    stream::iter(parts).boxed()
}

fn temp_files(store: &LocalBlobStore) -> usize {
    std::fs::read_dir(store.root().join(super::TEMP_DIR)).unwrap().count()
}

#[tokio::test]
async fn put_get_exists_delete() {
    let (_dir, store) = store();
    let k = key("cdn/ab/abcdef");
    assert!(!store.exists(&k).await.unwrap());
    assert_eq!(store.get(&k).await.unwrap_err(), BlobError::NotFound);

    let info = store.put(&k, chunks(&[b"hello ", b"world"]), 100).await.unwrap();
    assert_eq!(info.size, 11);
    assert_eq!(info.sha256, "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9");
    assert!(store.exists(&k).await.unwrap());
    assert!(store.root().join("cdn/ab/abcdef").is_file(), "one file per key under the root");
    let blob = store.get(&k).await.unwrap();
    assert_eq!(blob.size, 11);
    assert_eq!(store.get_bytes(&k).await.unwrap(), Bytes::from_static(b"hello world"));

    // Larger than one read chunk, and replaced whole.
    let big = Bytes::from(vec![7u8; super::READ_CHUNK * 2 + 5]);
    store.put_bytes(&k, big.clone(), 1 << 20).await.unwrap();
    assert_eq!(store.get_bytes(&k).await.unwrap(), big);

    store.delete(&k).await.unwrap();
    assert!(!store.exists(&k).await.unwrap());
    store.delete(&k).await.unwrap();
    assert_eq!(temp_files(&store), 0);
}

#[tokio::test]
async fn the_limit_stops_reading_and_keeps_nothing() {
    let (_dir, store) = store();
    let k = key("big");
    assert!(
        store.put(&k, chunks(&[b"12345", b"67890"]), 10).await.is_ok(),
        "exactly the limit is fine"
    );
    store.delete(&k).await.unwrap();

    // An endless body: the put must stop at the limit instead of reading (or buffering) it all.
    let polled = Arc::new(AtomicUsize::new(0));
    let counter = polled.clone();
    let endless = stream::repeat_with(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        Ok(Bytes::from_static(&[0u8; 1000]))
    })
    .boxed();
    assert_eq!(
        store.put(&k, endless, 10_500).await.unwrap_err(),
        BlobError::TooLarge { limit: 10_500 }
    );
    assert_eq!(
        polled.load(Ordering::SeqCst),
        11,
        "reading stopped at the first chunk past the limit"
    );
    assert!(!store.exists(&k).await.unwrap());
    assert_eq!(temp_files(&store), 0, "the partial file is removed");
}

#[tokio::test]
async fn a_put_replaces_atomically_or_not_at_all() {
    let (_dir, store) = store();
    let k = key("doc");
    store.put_bytes(&k, Bytes::from_static(b"old"), 100).await.unwrap();

    // A put in progress: readers still see the old blob.
    let (release, released) = oneshot::channel::<()>();
    let slow = stream::once(async { Ok(Bytes::from_static(b"new ")) })
        .chain(stream::once(async move {
            let _ = released.await;
            Ok(Bytes::from_static(b"content"))
        }))
        .boxed();
    let writer = {
        let store = store.clone();
        let k = k.clone();
        tokio::spawn(async move { store.put(&k, slow, 100).await })
    };
    for _ in 0..1000 {
        if temp_files(&store) == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    assert_eq!(temp_files(&store), 1, "the put is under way");
    assert_eq!(store.get_bytes(&k).await.unwrap(), Bytes::from_static(b"old"));
    release.send(()).unwrap();
    writer.await.unwrap().unwrap();
    assert_eq!(store.get_bytes(&k).await.unwrap(), Bytes::from_static(b"new content"));

    // A body that fails halfway leaves the blob as it was.
    let broken = stream::iter([Ok(Bytes::from_static(b"partial")), Err(BlobError::Body("client went away".into()))]).boxed();
    assert!(matches!(store.put(&k, broken, 100).await, Err(BlobError::Body(_))));
    assert_eq!(store.get_bytes(&k).await.unwrap(), Bytes::from_static(b"new content"));
    assert_eq!(temp_files(&store), 0);
}

#[tokio::test]
async fn keys_stay_under_the_root() {
    let (dir, store) = store();
    for bad in ["../escape", "a/../../escape", "/etc/passwd", ".tmp/x", "a/./b"] {
        assert!(matches!(BlobKey::new(bad), Err(BlobError::InvalidKey(_))), "{bad}");
    }
    store.put_bytes(&key("a.b/c..d"), Bytes::from_static(b"x"), 10).await.unwrap();
    assert!(store.root().join("a.b").join("c..d").is_file(), "inner dots are plain names");
    let outside: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(outside, vec![std::ffi::OsString::from("blobs")], "nothing written outside the root");
}

#[tokio::test]
async fn stale_temporary_files_are_removed_at_open() {
    let (dir, store) = store();
    let temp = store.root().join(super::TEMP_DIR);
    let stale = temp.join("old.part");
    let fresh = temp.join("fresh.part");
    std::fs::write(&stale, b"x").unwrap();
    std::fs::write(&fresh, b"x").unwrap();
    let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(two_hours_ago)
        .unwrap();
    drop(store);
    let _reopened = LocalBlobStore::open(dir.path().join("blobs")).unwrap();
    assert!(!stale.exists(), "a put of a dead process is cleaned up");
    assert!(fresh.exists(), "a put that may still be running is left alone");
}
