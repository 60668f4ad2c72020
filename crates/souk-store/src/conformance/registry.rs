//! Conformance cases: apps, services, APIs, packages, and opening a store.

use serde_json::json;
use souk_core::model::{Api, App, Package, PackageFilter, Service};
use souk_core::store::StoreError;
use souk_types::admin::ApiMode;

use super::builders::{api, app, package, service, APP_A, APP_B, SVC, SVC2};
use super::Store;

/// `ping` answers and `backend` names one of the known backends.
pub async fn ping_and_backend(store: Store) {
    store.ping().await.unwrap();
    assert!(["sqlite", "postgres"].contains(&store.backend()), "{}", store.backend());
}

/// Apps: insert, get, AlreadyExists, update replaces every field, NotFound, keyset listing.
pub async fn registry_apps(store: Store) {
    let a = app(APP_A);
    store.insert_app(&a).await.unwrap();
    assert_eq!(store.get_app(APP_A).await.unwrap(), Some(a.clone()));
    assert_eq!(store.insert_app(&a).await, Err(StoreError::AlreadyExists));
    assert_eq!(store.get_app("wx0000000000000404").await.unwrap(), None);

    let updated = App {
        name: "renamed".into(),
        app_type: "minigame".into(),
        secret_hash: "cd".repeat(32),
        open_account: None,
        pages: vec![],
        theme_color: None,
        message_url: None,
        message_token: None,
        allowed_origins: vec!["https://b.example".into(), "https://c.example".into()],
        rate_limit: None,
        disabled: true,
        ..a.clone()
    };
    store.update_app(&updated).await.unwrap();
    assert_eq!(store.get_app(APP_A).await.unwrap(), Some(updated));
    assert_eq!(store.update_app(&app("wx0000000000000404")).await, Err(StoreError::NotFound));

    for appid in [
        "wx0000000000000005",
        "wx0000000000000003",
        "wx0000000000000004",
        "wx0000000000000001",
    ] {
        store.insert_app(&app(appid)).await.unwrap();
    }
    let all: Vec<String> = store.list_apps(None, 100).await.unwrap().into_iter().map(|a| a.appid).collect();
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(all, sorted);
    assert_eq!(all.len(), 5);

    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.list_apps(after.as_deref(), 2).await.unwrap();
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        after = Some(last.appid.clone());
        paged.extend(page.into_iter().map(|a| a.appid));
    }
    assert_eq!(paged, all);
    assert!(store.list_apps(Some(all.last().unwrap()), 10).await.unwrap().is_empty());
    assert!(store.list_apps(None, 0).await.unwrap().is_empty());
}

/// Services: insert, get, AlreadyExists, update, NotFound, keyset listing.
pub async fn registry_services(store: Store) {
    let s = service(SVC);
    store.insert_service(&s).await.unwrap();
    assert_eq!(store.get_service(SVC).await.unwrap(), Some(s.clone()));
    assert_eq!(store.insert_service(&s).await, Err(StoreError::AlreadyExists));
    assert_eq!(store.get_service("wx0000000000000404").await.unwrap(), None);

    let updated = Service {
        name: "renamed".into(),
        secret: "rotated".into(),
        disabled: true,
        ..s.clone()
    };
    store.update_service(&updated).await.unwrap();
    assert_eq!(store.get_service(SVC).await.unwrap(), Some(updated));
    assert_eq!(
        store.update_service(&service("wx0000000000000404")).await,
        Err(StoreError::NotFound)
    );

    store.insert_service(&service(SVC2)).await.unwrap();
    store.insert_service(&service("wx0000000000000001")).await.unwrap();
    let first = store.list_services(None, 2).await.unwrap();
    assert_eq!(
        first.iter().map(|s| s.service_id.as_str()).collect::<Vec<_>>(),
        ["wx0000000000000001", SVC2]
    );
    let rest = store.list_services(Some(SVC2), 2).await.unwrap();
    assert_eq!(rest.iter().map(|s| s.service_id.as_str()).collect::<Vec<_>>(), [SVC]);
}

/// APIs: NotFound on a missing service, AlreadyExists, get, list by name, update, delete.
pub async fn registry_apis(store: Store) {
    assert_eq!(store.insert_api(&api(SVC, "search")).await, Err(StoreError::NotFound));
    store.insert_service(&service(SVC)).await.unwrap();
    store.insert_service(&service(SVC2)).await.unwrap();

    let search = api(SVC, "search");
    store.insert_api(&search).await.unwrap();
    assert_eq!(store.insert_api(&search).await, Err(StoreError::AlreadyExists));
    let mut other = api(SVC, "analyze");
    other.schema = None;
    other.rate_limit = None;
    other.mode = ApiMode::Both;
    store.insert_api(&other).await.unwrap();
    store.insert_api(&api(SVC2, "search")).await.unwrap();

    assert_eq!(store.get_api(SVC, "search").await.unwrap(), Some(search.clone()));
    assert_eq!(store.get_api(SVC, "nope").await.unwrap(), None);
    assert_eq!(store.list_apis(SVC).await.unwrap(), vec![other.clone(), search.clone()]);
    assert!(store.list_apis("wx0000000000000404").await.unwrap().is_empty());

    let updated = Api {
        upstream_url: "https://elsewhere.example/s".into(),
        mode: ApiMode::Async,
        timeout_ms: 60_000,
        schema: Some(json!({"type": "object"})),
        price: 0,
        rate_limit: None,
        ..search.clone()
    };
    store.update_api(&updated).await.unwrap();
    assert_eq!(store.get_api(SVC, "search").await.unwrap(), Some(updated));
    assert_eq!(store.update_api(&api(SVC, "nope")).await, Err(StoreError::NotFound));

    store.delete_api(SVC, "search").await.unwrap();
    assert_eq!(store.delete_api(SVC, "search").await, Err(StoreError::NotFound));
    assert_eq!(store.get_api(SVC, "search").await.unwrap(), None);
    assert_eq!(store.list_apis(SVC).await.unwrap(), vec![other]);
    assert!(store.get_api(SVC2, "search").await.unwrap().is_some());
}

/// Packages: insert, get, AlreadyExists, filtered keyset listing.
pub async fn registry_packages(store: Store) {
    let p1 = package("pkg-1", APP_A, SVC, 10, Some(5_000), 100);
    store.insert_package(&p1).await.unwrap();
    assert_eq!(store.insert_package(&p1).await, Err(StoreError::AlreadyExists));
    assert_eq!(store.get_package("pkg-1").await.unwrap(), Some(p1.clone()));
    assert_eq!(store.get_package("pkg-404").await.unwrap(), None);
    let mut p2 = package("pkg-2", APP_A, SVC2, 20, None, 200);
    p2.units_left = 7;
    store.insert_package(&p2).await.unwrap();
    store.insert_package(&package("pkg-3", APP_B, SVC, 30, None, 300)).await.unwrap();
    store.insert_package(&package("pkg-4", APP_A, SVC, 40, None, 400)).await.unwrap();
    assert_eq!(store.get_package("pkg-2").await.unwrap(), Some(p2));

    let ids = |packages: Vec<Package>| packages.into_iter().map(|p| p.package_id).collect::<Vec<_>>();
    let all = PackageFilter {
        limit: 100,
        ..Default::default()
    };
    assert_eq!(ids(store.list_packages(&all).await.unwrap()), ["pkg-1", "pkg-2", "pkg-3", "pkg-4"]);
    let by_app = PackageFilter {
        appid: Some(APP_A.into()),
        limit: 100,
        ..Default::default()
    };
    assert_eq!(ids(store.list_packages(&by_app).await.unwrap()), ["pkg-1", "pkg-2", "pkg-4"]);
    let by_both = PackageFilter {
        appid: Some(APP_A.into()),
        service_id: Some(SVC.into()),
        limit: 100,
        ..Default::default()
    };
    assert_eq!(ids(store.list_packages(&by_both).await.unwrap()), ["pkg-1", "pkg-4"]);
    let by_service = PackageFilter {
        service_id: Some(SVC.into()),
        limit: 2,
        ..Default::default()
    };
    assert_eq!(ids(store.list_packages(&by_service).await.unwrap()), ["pkg-1", "pkg-3"]);
    let next = PackageFilter {
        after: Some("pkg-3".into()),
        ..by_service
    };
    assert_eq!(ids(store.list_packages(&next).await.unwrap()), ["pkg-4"]);
}

/// Opening the same store again re-runs no migration and keeps the data.
pub async fn reopen_keeps_data(url: String) {
    let store = crate::open(&url).await.unwrap();
    store.insert_app(&app(APP_A)).await.unwrap();
    drop(store);
    let store = crate::open(&url).await.unwrap();
    assert_eq!(store.get_app(APP_A).await.unwrap(), Some(app(APP_A)));
}

/// Several nodes opening (and so migrating) one empty database at once all succeed.
pub async fn concurrent_open(url: String) {
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { crate::open(&url).await.map(|store| store.backend()) })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let store = crate::open(&url).await.unwrap();
    store.insert_service(&service(SVC)).await.unwrap();
    store.insert_api(&api(SVC, "search")).await.unwrap();
}

/// `Migrations::Require` (`souk serve --no-migrate`) applies nothing: it refuses an empty
/// database, naming `souk migrate`, and one with a migration missing, naming it; it opens a
/// database at this version's schema.
pub async fn require_migrations(url: String) {
    let Err(refused) = crate::open_with(&url, crate::Migrations::Require).await else {
        panic!("an empty database is refused");
    };
    assert!(refused.to_string().contains("souk migrate"), "{refused}");
    drop(crate::open(&url).await.expect("migrating works"));
    let store = crate::open_with(&url, crate::Migrations::Require)
        .await
        .expect("a migrated database opens without migrating");
    store.insert_app(&app(APP_A)).await.unwrap();
    drop(store);
    // Forget the newest migration: the database now lacks it.
    let latest = crate::Migrations::latest_version(&url).expect("a known backend");
    forget_migration(&url, latest).await;
    let Err(refused) = crate::open_with(&url, crate::Migrations::Require).await else {
        panic!("a database missing a migration is refused");
    };
    assert!(refused.to_string().contains(&format!("lacks migration(s) {latest}")), "{refused}");
}

/// Deletes one row of `_sqlx_migrations` through a plain connection.
async fn forget_migration(url: &str, version: i64) {
    use sqlx::Connection;
    if url.starts_with("sqlite://") {
        let mut connection = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query("DELETE FROM _sqlx_migrations WHERE version = $1")
            .bind(version)
            .execute(&mut connection)
            .await
            .unwrap();
    } else {
        let mut connection = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query("DELETE FROM _sqlx_migrations WHERE version = $1")
            .bind(version)
            .execute(&mut connection)
            .await
            .unwrap();
    }
}
