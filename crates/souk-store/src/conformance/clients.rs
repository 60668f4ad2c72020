//! Conformance cases of the client records: end users, unionids, sessions and grants.

use std::sync::Arc;

use souk_core::store::clients::{ClientSession, EndUser, Grant};
use souk_core::store::StoreError;

use super::Store;

fn user(appid: &str, user: &str, openid: &str) -> EndUser {
    EndUser {
        appid: appid.to_owned(),
        user: user.to_owned(),
        openid: openid.to_owned(),
        nick: None,
        scopes: Vec::new(),
        created_at_ms: 1_000,
    }
}

fn session(hash: &str, appid: &str, expires_at_ms: i64) -> ClientSession {
    ClientSession {
        session_hash: hash.to_owned(),
        appid: appid.to_owned(),
        openid: "o1".to_owned(),
        user: "u1".to_owned(),
        plugin_appid: Some("wxplugin".to_owned()),
        created_at_ms: 1_000,
        expires_at_ms,
    }
}

/// The first use stores the user; later and racing uses answer the same openid; updates merge scopes.
pub async fn clients_users(store: Store) {
    let first = store.get_or_create_user(&user("wxa", "u1", "o-first")).await.unwrap();
    assert_eq!(first.openid, "o-first");
    let again = store.get_or_create_user(&user("wxa", "u1", "o-second")).await.unwrap();
    assert_eq!(again.openid, "o-first", "a known user keeps its openid");
    let other_app = store.get_or_create_user(&user("wxb", "u1", "o-b")).await.unwrap();
    assert_eq!(other_app.openid, "o-b", "openids are per app");

    let racers = (0..20).map(|idx| {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            store
                .get_or_create_user(&user("wxa", "racer", &format!("o-{idx}")))
                .await
                .unwrap()
                .openid
        })
    });
    let openids: Vec<String> = futures_join(racers).await;
    assert!(
        openids.iter().all(|openid| *openid == openids[0]),
        "racing first uses agree: {openids:?}"
    );

    let updated = store
        .update_user("wxa", "o-first", Some("Ann"), &["scope.userInfo".to_owned(), "b".to_owned()])
        .await
        .unwrap();
    assert_eq!(updated.nick.as_deref(), Some("Ann"));
    let updated = store
        .update_user("wxa", "o-first", None, &["b".to_owned(), "a".to_owned()])
        .await
        .unwrap();
    assert_eq!(updated.scopes, vec!["a", "b", "scope.userInfo"]);
    assert_eq!(updated.nick.as_deref(), Some("Ann"), "no nick given leaves it");
    assert_eq!(store.find_user("wxa", "o-first").await.unwrap(), Some(updated));
    assert_eq!(store.find_user("wxa", "o-b").await.unwrap(), None);
    assert_eq!(store.update_user("wxa", "nobody", None, &[]).await, Err(StoreError::NotFound));
}

async fn futures_join<T: Send + 'static>(tasks: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut results = Vec::new();
    for task in tasks.collect::<Vec<_>>() {
        results.push(task.await.unwrap());
    }
    results
}

/// One unionid per (open account, person), whatever the app.
pub async fn clients_unionids(store: Store) {
    assert_eq!(store.get_or_create_unionid("oa1", "u1", "un-1").await.unwrap(), "un-1");
    assert_eq!(store.get_or_create_unionid("oa1", "u1", "un-2").await.unwrap(), "un-1");
    assert_eq!(store.get_or_create_unionid("oa2", "u1", "un-3").await.unwrap(), "un-3");
}

/// Sessions: stored, found, revoked per app, swept when expired.
pub async fn clients_sessions(store: Store) {
    store.insert_session(&session("h1", "wxa", 5_000)).await.unwrap();
    store.insert_session(&session("h2", "wxa", 9_000)).await.unwrap();
    store.insert_session(&session("h3", "wxb", 9_000)).await.unwrap();
    assert_eq!(
        store.insert_session(&session("h1", "wxa", 5_000)).await,
        Err(StoreError::AlreadyExists)
    );
    assert_eq!(store.find_session("h1").await.unwrap(), Some(session("h1", "wxa", 5_000)));
    assert_eq!(store.sweep_sessions(6_000).await.unwrap(), 1);
    assert_eq!(store.find_session("h1").await.unwrap(), None);
    assert_eq!(store.revoke_sessions("wxa").await.unwrap(), 1);
    assert_eq!(store.find_session("h2").await.unwrap(), None);
    assert!(store.find_session("h3").await.unwrap().is_some(), "other apps' sessions stay");
}

/// Grants: unique per pair, listed by either side, deleted once.
pub async fn clients_grants(store: Store) {
    let grant = |payer: &str, caller: &str| Grant {
        payer_appid: payer.to_owned(),
        caller_appid: caller.to_owned(),
        created_at_ms: 7,
    };
    store.insert_grant(&grant("p1", "c1")).await.unwrap();
    store.insert_grant(&grant("p1", "c2")).await.unwrap();
    store.insert_grant(&grant("p2", "c1")).await.unwrap();
    assert_eq!(store.insert_grant(&grant("p1", "c1")).await, Err(StoreError::AlreadyExists));
    assert!(store.has_grant("p1", "c1").await.unwrap());
    assert!(!store.has_grant("c1", "p1").await.unwrap(), "grants have a direction");
    assert_eq!(
        store.list_grants(Some("p1"), None).await.unwrap(),
        vec![grant("p1", "c1"), grant("p1", "c2")]
    );
    assert_eq!(
        store.list_grants(None, Some("c1")).await.unwrap(),
        vec![grant("p1", "c1"), grant("p2", "c1")]
    );
    assert_eq!(store.list_grants(None, None).await.unwrap().len(), 3);
    store.delete_grant("p1", "c1").await.unwrap();
    assert_eq!(store.delete_grant("p1", "c1").await, Err(StoreError::NotFound));
    assert!(!store.has_grant("p1", "c1").await.unwrap());
}
