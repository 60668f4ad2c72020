//! Conformance cases: the call log.

use souk_core::model::{CallFilter, CallRecord};

use super::builders::{call, APP_A, APP_B, SVC, SVC2};
use super::Store;

/// A batch bigger than a backend may write at once (here 250 records) is written whole, every field
/// kept; the writer's retry of it, with new records behind, adds only the new ones.
pub async fn call_log_big_batch_and_retry(store: Store) {
    let batch: Vec<CallRecord> = (0..250)
        .map(|i| {
            let mut record = call(&format!("b{i:03}"), 10_000 + i, APP_A, SVC, "search", i % 2);
            record.latency_us = 1_000 + i;
            record.cache_hit = i % 3 == 0;
            record
        })
        .collect();
    store.append_calls(&batch).await.unwrap();
    let mut retried = batch.clone();
    retried.extend((250..260).map(|i| call(&format!("b{i:03}"), 10_000 + i, APP_A, SVC, "search", 0)));
    store.append_calls(&retried).await.unwrap();
    let mut all = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .list_calls(&CallFilter {
                limit: 100,
                before: before.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        before = Some((last.at_ms, last.request_id.clone()));
        all.extend(page);
    }
    assert_eq!(all.len(), 260);
    all.reverse();
    assert_eq!(all[..250], batch[..]);
    assert_eq!(all[255].request_id, "b255");
}

/// `append_calls` skips known request ids; `list_calls` filters, orders newest first and pages
/// with the keyset cursor.
pub async fn call_log(store: Store) {
    let c1 = call("c1", 1_000, APP_A, SVC, "search", 0);
    let c2 = call("c2", 2_000, APP_A, SVC, "analyze", 0);
    let c3 = call("c3", 2_000, APP_B, SVC, "search", 40001);
    let mut c4 = call("c4", 3_000, APP_A, SVC2, "search", 0);
    c4.appid = None;
    c4.openid = None;
    c4.service_id = None;
    c4.api = None;
    c4.message = None;
    c4.package_id = None;
    c4.route = "token".into();
    let c5 = call("c5", 4_000, APP_B, SVC2, "search", 40001);
    let c6 = call("c6", 2_000, APP_A, SVC, "search", 0);
    store.append_calls(&[c1.clone(), c2.clone(), c3.clone()]).await.unwrap();
    store.append_calls(&[]).await.unwrap();
    let mut c3_again = c3.clone();
    c3_again.errcode = 999;
    store
        .append_calls(&[c3_again, c4.clone(), c5.clone(), c6.clone(), c6.clone()])
        .await
        .unwrap();

    let list = |filter: CallFilter| {
        let store = store.clone();
        async move { store.list_calls(&filter).await.unwrap() }
    };
    let ids = |calls: Vec<CallRecord>| calls.into_iter().map(|c| c.request_id).collect::<Vec<_>>();
    let all = list(CallFilter {
        limit: 100,
        ..Default::default()
    })
    .await;
    assert_eq!(all, vec![c5.clone(), c4.clone(), c6.clone(), c3.clone(), c2.clone(), c1.clone()]);

    let f = |configure: fn(&mut CallFilter)| {
        let mut filter = CallFilter {
            limit: 100,
            ..Default::default()
        };
        configure(&mut filter);
        filter
    };
    assert_eq!(ids(list(f(|f| f.appid = Some(APP_A.into()))).await), ["c6", "c2", "c1"]);
    assert_eq!(ids(list(f(|f| f.service_id = Some(SVC2.into()))).await), ["c5"]);
    assert_eq!(ids(list(f(|f| f.api = Some("search".into()))).await), ["c5", "c6", "c3", "c1"]);
    assert_eq!(ids(list(f(|f| f.errcode = Some(40001))).await), ["c5", "c3"]);
    assert_eq!(ids(list(f(|f| f.request_id = Some("c4".into()))).await), ["c4"]);
    assert_eq!(ids(list(f(|f| f.since_ms = Some(2_000))).await), ["c5", "c4", "c6", "c3", "c2"]);
    assert_eq!(
        ids(list(f(|f| {
            f.appid = Some(APP_A.into());
            f.api = Some("search".into());
            f.since_ms = Some(1_500);
        }))
        .await),
        ["c6"]
    );
    assert_eq!(ids(list(f(|f| f.before = Some((2_000, "c6".into())))).await), ["c3", "c2", "c1"]);
    assert_eq!(ids(list(f(|f| f.before = Some((2_000, "c3".into())))).await), ["c2", "c1"]);
    assert!(list(f(|f| f.limit = 0)).await.is_empty());

    // Paging with the cursor visits every call once, in order.
    let mut paged = Vec::new();
    let mut before = None;
    loop {
        let page = list(CallFilter {
            before: before.clone(),
            limit: 2,
            ..Default::default()
        })
        .await;
        let Some(last) = page.last() else { break };
        before = Some((last.at_ms, last.request_id.clone()));
        paged.extend(page);
    }
    assert_eq!(paged, all);
}
