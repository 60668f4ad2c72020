//! Conformance cases: mini-program codes, their lifetime count (45029) and short ids.

use std::sync::Arc;

use souk_core::store::codes::{CodeCount, CodeRecord};

use super::builders::{APP_A, APP_B};
use super::Store;

/// A code record of `appid` with parameters hashing to `params_hash`.
pub fn code(code_id: &str, appid: &str, params_hash: &str, counted: bool) -> CodeRecord {
    CodeRecord {
        code_id: code_id.to_owned(),
        appid: appid.to_owned(),
        kind: if counted { "get" } else { "unlimited" }.to_owned(),
        params_hash: params_hash.to_owned(),
        counted,
        path: counted.then(|| "pages/index?id=页".to_owned()),
        page: (!counted).then(|| "pages/index".to_owned()),
        scene: (!counted).then(|| "a=1&b=2".to_owned()),
        env_version: Some("trial".to_owned()),
        created_at_ms: 1_700_000_000_000,
    }
}

/// A new code is kept with every field; identical parameters answer the first code (its id) and
/// count nothing; ids are found by `get_code`; apps count apart.
pub async fn codes_count_and_get(store: Store) {
    let first = code("c1", APP_A, "h1", true);
    assert_eq!(store.count_code(&first, 10).await.unwrap(), CodeCount::Counted(first.clone()));
    assert_eq!(store.get_code("c1").await.unwrap(), Some(first.clone()));
    assert_eq!(store.get_code("nope").await.unwrap(), None);

    let again = code("c2", APP_A, "h1", true);
    assert_eq!(
        store.count_code(&again, 10).await.unwrap(),
        CodeCount::AlreadyCounted(first.clone())
    );
    assert_eq!(store.get_code("c2").await.unwrap(), None);
    assert_eq!(store.counted_codes(APP_A).await.unwrap(), 1);

    let unlimited = code("u1", APP_A, "h2", false);
    assert_eq!(
        store.count_code(&unlimited, 10).await.unwrap(),
        CodeCount::Counted(unlimited.clone())
    );
    assert_eq!(store.get_code("u1").await.unwrap(), Some(unlimited));
    assert_eq!(store.counted_codes(APP_A).await.unwrap(), 1, "unlimited codes are not counted");

    let other = code("c3", APP_B, "h1", true);
    assert_eq!(store.count_code(&other, 10).await.unwrap(), CodeCount::Counted(other.clone()));
    assert_eq!(store.counted_codes(APP_B).await.unwrap(), 1);
}

/// At the limit a new counted code is refused and nothing kept; identical parameters and uncounted
/// codes still answer.
pub async fn codes_limit(store: Store) {
    for n in 0..3 {
        let record = code(&format!("c{n}"), APP_A, &format!("h{n}"), true);
        assert_eq!(store.count_code(&record, 3).await.unwrap(), CodeCount::Counted(record.clone()));
    }
    assert_eq!(
        store.count_code(&code("c9", APP_A, "h9", true), 3).await.unwrap(),
        CodeCount::LimitReached
    );
    assert_eq!(store.get_code("c9").await.unwrap(), None);
    assert!(
        matches!(store.count_code(&code("x", APP_A, "h1", true), 3).await.unwrap(), CodeCount::AlreadyCounted(found) if found.code_id == "c1")
    );
    assert!(matches!(
        store.count_code(&code("u", APP_A, "hu", false), 3).await.unwrap(),
        CodeCount::Counted(_)
    ));
    assert!(matches!(
        store.count_code(&code("b", APP_B, "h9", true), 3).await.unwrap(),
        CodeCount::Counted(_)
    ));
    assert_eq!(store.counted_codes(APP_A).await.unwrap(), 3);
}

/// Many racing counts never pass the limit, and identical racing counts keep one code.
pub async fn codes_limit_race(store: Store) {
    const LIMIT: u64 = 5;
    let tasks: Vec<_> = (0..24)
        .map(|n| {
            let store = Arc::clone(&store);
            // Every parameter set twice: pairs race on the same hash.
            tokio::spawn(async move {
                store
                    .count_code(&code(&format!("r{n}"), APP_A, &format!("h{}", n / 2), true), LIMIT)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut counted = 0;
    for task in tasks {
        if let CodeCount::Counted(_) = task.await.unwrap() {
            counted += 1;
        }
    }
    assert_eq!(counted, LIMIT);
    assert_eq!(store.counted_codes(APP_A).await.unwrap(), LIMIT);
}
