//! Conformance cases of cloud apps: insert (ids and app keys unique), get, list by app with a cursor,
//! update.

use souk_core::cloud::CloudApp;
use souk_core::store::StoreError;
use souk_types::sign::SignMethod;

use super::Store;

fn cloud_app(cloud_app_id: &str, appid: &str, app_key: &str) -> CloudApp {
    CloudApp {
        cloud_app_id: cloud_app_id.to_owned(),
        appid: appid.to_owned(),
        app_key: app_key.to_owned(),
        secret: "0123456789abcdef0123456789abcdef".to_owned(),
        env: "online".to_owned(),
        whitelist: vec!["https://a.example".to_owned(), "http://127.0.0.1:8080".to_owned()],
        sign_method: SignMethod::HmacSha256,
        disabled: false,
        created_at_ms: 1_000,
    }
}

/// What is stored is read back whole; ids and app keys are unique.
pub async fn cloud_apps_insert_and_get(store: Store) {
    let first = cloud_app("1000000000000001", "wxa", "10000001");
    store.insert_cloud_app(&first).await.unwrap();
    assert_eq!(store.get_cloud_app("1000000000000001").await.unwrap(), Some(first.clone()));
    assert_eq!(store.get_cloud_app("1000000000000009").await.unwrap(), None);

    let same_id = cloud_app("1000000000000001", "wxb", "10000002");
    assert_eq!(store.insert_cloud_app(&same_id).await, Err(StoreError::AlreadyExists));
    let same_key = cloud_app("1000000000000002", "wxa", "10000001");
    assert_eq!(store.insert_cloud_app(&same_key).await, Err(StoreError::AlreadyExists));
    assert_eq!(
        store.get_cloud_app("1000000000000002").await.unwrap(),
        None,
        "a refused insert leaves nothing"
    );

    let mut md5 = cloud_app("1000000000000003", "wxa", "10000003");
    md5.sign_method = SignMethod::Md5;
    md5.whitelist = Vec::new();
    md5.disabled = true;
    store.insert_cloud_app(&md5).await.unwrap();
    assert_eq!(store.get_cloud_app("1000000000000003").await.unwrap(), Some(md5));
}

/// Lists are ordered by id, filtered by app, paged with a cursor.
pub async fn cloud_apps_list(store: Store) {
    for (idx, appid) in ["wxa", "wxb", "wxa", "wxa", "wxb"].iter().enumerate() {
        let id = format!("100000000000000{idx}");
        store
            .insert_cloud_app(&cloud_app(&id, appid, &format!("1000000{idx}")))
            .await
            .unwrap();
    }
    let ids = |apps: Vec<CloudApp>| apps.into_iter().map(|app| app.cloud_app_id).collect::<Vec<_>>();
    let all = ids(store.list_cloud_apps(None, None, 100).await.unwrap());
    assert_eq!(all.len(), 5);
    assert!(all.windows(2).all(|pair| pair[0] < pair[1]), "{all:?}");
    let of_a = ids(store.list_cloud_apps(Some("wxa"), None, 100).await.unwrap());
    assert_eq!(of_a, ["1000000000000000", "1000000000000002", "1000000000000003"]);
    let page = ids(store.list_cloud_apps(Some("wxa"), None, 2).await.unwrap());
    assert_eq!(page, ["1000000000000000", "1000000000000002"]);
    let next = ids(store.list_cloud_apps(Some("wxa"), Some(&page[1]), 2).await.unwrap());
    assert_eq!(next, ["1000000000000003"]);
    assert!(store.list_cloud_apps(Some("wxc"), None, 10).await.unwrap().is_empty());
    let after = ids(store.list_cloud_apps(None, Some("1000000000000003"), 10).await.unwrap());
    assert_eq!(after, ["1000000000000004"]);
}

/// Updates replace every field but the id, app and creation time; a missing cloud app is `NotFound`.
pub async fn cloud_apps_update(store: Store) {
    let original = cloud_app("1000000000000001", "wxa", "10000001");
    store.insert_cloud_app(&original).await.unwrap();
    let mut changed = original.clone();
    changed.app_key = "20000001".to_owned();
    changed.secret = "fedcba9876543210fedcba9876543210".to_owned();
    changed.env = "test".to_owned();
    changed.whitelist = vec!["https://b.example:8443".to_owned()];
    changed.sign_method = SignMethod::Hmac;
    changed.disabled = true;
    store.update_cloud_app(&changed).await.unwrap();
    assert_eq!(store.get_cloud_app("1000000000000001").await.unwrap(), Some(changed.clone()));

    let mut moved = changed.clone();
    moved.appid = "wxother".to_owned();
    moved.created_at_ms = 5;
    store.update_cloud_app(&moved).await.unwrap();
    assert_eq!(
        store.get_cloud_app("1000000000000001").await.unwrap(),
        Some(changed),
        "the owner and creation time never change"
    );

    let missing = cloud_app("1000000000000009", "wxa", "10000009");
    assert_eq!(store.update_cloud_app(&missing).await, Err(StoreError::NotFound));

    store
        .insert_cloud_app(&cloud_app("1000000000000002", "wxa", "10000002"))
        .await
        .unwrap();
    let mut clash = original;
    clash.app_key = "10000002".to_owned();
    assert_eq!(
        store.update_cloud_app(&clash).await,
        Err(StoreError::AlreadyExists),
        "app keys stay unique"
    );
}
