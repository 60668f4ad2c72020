//! Conformance cases: temporary media metadata.

use souk_core::store::media::MediaRecord;
use souk_core::store::StoreError;

use super::builders::{APP_A, APP_B};
use super::Store;

/// A media record expiring at `expires_at_ms`.
pub fn media_record(media_id: &str, appid: &str, expires_at_ms: i64) -> MediaRecord {
    MediaRecord {
        media_id: media_id.to_owned(),
        appid: appid.to_owned(),
        media_type: "image".to_owned(),
        content_type: "image/jpeg".to_owned(),
        size: 5_000_000_000,
        created_at_ms: 1_700_000_000_000,
        expires_at_ms,
    }
}

/// Insert, get (every field back, sizes past 32 bits), a taken id refused, delete once.
pub async fn media_insert_get_delete(store: Store) {
    let media = media_record("m1", APP_A, 1_700_259_200_000);
    store.insert_media(&media).await.unwrap();
    assert_eq!(store.get_media("m1").await.unwrap(), Some(media.clone()));
    assert_eq!(store.get_media("M1").await.unwrap(), None, "ids are case-sensitive");
    assert_eq!(store.get_media("m2").await.unwrap(), None);
    assert_eq!(
        store.insert_media(&media_record("m1", APP_B, 1)).await,
        Err(StoreError::AlreadyExists)
    );
    assert_eq!(store.get_media("m1").await.unwrap(), Some(media));

    assert!(store.delete_media("m1").await.unwrap());
    assert!(!store.delete_media("m1").await.unwrap());
    assert_eq!(store.get_media("m1").await.unwrap(), None);
}

/// Expired means `expires_at_ms <= now`; soonest expiry first, then by id; bounded by the limit.
pub async fn media_list_expired(store: Store) {
    for (media_id, expires_at_ms) in [("c", 300), ("a", 100), ("b", 300), ("d", 301), ("e", 900)] {
        store.insert_media(&media_record(media_id, APP_A, expires_at_ms)).await.unwrap();
    }
    let ids = |media: Vec<MediaRecord>| media.into_iter().map(|m| m.media_id).collect::<Vec<_>>();
    assert_eq!(ids(store.list_expired_media(99, 10).await.unwrap()), Vec::<String>::new());
    assert_eq!(ids(store.list_expired_media(300, 10).await.unwrap()), ["a", "b", "c"]);
    assert_eq!(ids(store.list_expired_media(1_000, 2).await.unwrap()), ["a", "b"]);

    assert!(store.delete_media("a").await.unwrap());
    assert_eq!(ids(store.list_expired_media(1_000, 10).await.unwrap()), ["b", "c", "d", "e"]);
}
