//! Conformance cases: CDN file metadata.

use souk_core::store::cdn::CdnFileRecord;
use souk_core::store::StoreError;

use super::builders::{APP_A, APP_B};
use super::Store;

/// A file record expiring at `expires_at_ms`.
pub fn cdn_file(file_id: &str, appid: &str, expires_at_ms: i64) -> CdnFileRecord {
    CdnFileRecord {
        file_id: file_id.to_owned(),
        appid: appid.to_owned(),
        content_type: "image/png; charset=binary".to_owned(),
        size: 5_000_000_000,
        sha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".to_owned(),
        created_at_ms: 1_700_000_000_000,
        expires_at_ms,
    }
}

/// Insert, get (every field back, sizes past 32 bits), a taken id refused, delete once.
pub async fn cdn_files_insert_get_delete(store: Store) {
    let file = cdn_file("f1", APP_A, 1_700_259_200_000);
    store.insert_cdn_file(&file).await.unwrap();
    assert_eq!(store.get_cdn_file("f1").await.unwrap(), Some(file.clone()));
    assert_eq!(store.get_cdn_file("f2").await.unwrap(), None);
    assert_eq!(
        store.insert_cdn_file(&cdn_file("f1", APP_B, 1)).await,
        Err(StoreError::AlreadyExists)
    );
    assert_eq!(store.get_cdn_file("f1").await.unwrap(), Some(file));

    assert!(store.delete_cdn_file("f1").await.unwrap());
    assert!(!store.delete_cdn_file("f1").await.unwrap());
    assert_eq!(store.get_cdn_file("f1").await.unwrap(), None);
}

/// Expired means `expires_at_ms <= now`; soonest expiry first, then by id; bounded by the limit.
pub async fn cdn_files_list_expired(store: Store) {
    for (file_id, expires_at_ms) in [("c", 300), ("a", 100), ("b", 300), ("d", 301), ("e", 900)] {
        store.insert_cdn_file(&cdn_file(file_id, APP_A, expires_at_ms)).await.unwrap();
    }
    let ids = |files: Vec<CdnFileRecord>| files.into_iter().map(|file| file.file_id).collect::<Vec<_>>();
    assert_eq!(ids(store.list_expired_cdn_files(99, 10).await.unwrap()), Vec::<String>::new());
    assert_eq!(ids(store.list_expired_cdn_files(300, 10).await.unwrap()), ["a", "b", "c"]);
    assert_eq!(ids(store.list_expired_cdn_files(1_000, 2).await.unwrap()), ["a", "b"]);

    assert!(store.delete_cdn_file("a").await.unwrap());
    assert_eq!(ids(store.list_expired_cdn_files(1_000, 10).await.unwrap()), ["b", "c", "d", "e"]);
}
