//! Conformance cases: reservation, settlement, idempotency, reaping.

use souk_core::model::{ChargeState, IdempotencyRecord, ReserveOutcome};
use souk_core::store::StoreError;

use super::builders::{call, package, reservation, reserved, settlement, units_left, with_msg_id, APP_A, APP_B, SVC, SVC2};
use super::Store;

/// `reserve` takes the soonest-expiring usable package, then the oldest; never an expired one, one
/// of another service, or one with too few units.
pub async fn reserve_picks_soonest_expiring(store: Store) {
    let now = 1_000;
    for p in [
        package("p-never", APP_A, SVC, 1, None, 100),
        package("p-late", APP_A, SVC, 1, Some(10_000_000), 50),
        package("p-soon-newer", APP_A, SVC, 1, Some(5_000_000), 300),
        package("p-soon-older", APP_A, SVC, 1, Some(5_000_000), 200),
        package("p-expired", APP_A, SVC, 10, Some(now), 10),
        package("p-other-service", APP_A, SVC2, 10, Some(2_000), 10),
        package("p-other-payer", APP_B, SVC, 10, Some(2_000), 10),
        package("p-small", APP_A, SVC, 1, Some(3_000), 10),
    ] {
        store.insert_package(&p).await.unwrap();
    }
    // Two units: only packages with at least two left qualify (none of the 1-unit ones).
    assert_eq!(
        store.reserve(&reservation("r0", APP_A, SVC, 2, now)).await.unwrap(),
        ReserveOutcome::Exhausted
    );
    let expected = ["p-small", "p-soon-older", "p-soon-newer", "p-late", "p-never"];
    for (i, package_id) in expected.iter().enumerate() {
        let outcome = store
            .reserve(&reservation(&format!("r{}", i + 1), APP_A, SVC, 1, now))
            .await
            .unwrap();
        assert_eq!(outcome, reserved(package_id), "reservation {}", i + 1);
    }
    assert_eq!(
        store.reserve(&reservation("r9", APP_A, SVC, 1, now)).await.unwrap(),
        ReserveOutcome::Exhausted
    );
    assert_eq!(units_left(&store, "p-expired").await, 10);

    let entries = store.ledger("p-soon-older").await.unwrap();
    assert_eq!(entries.len(), 1);
    let entry = &entries[0];
    assert_eq!(entry.request_id, "r2");
    assert_eq!(entry.payer_appid, APP_A);
    assert_eq!(entry.caller_appid, APP_A);
    assert_eq!(entry.service_id, SVC);
    assert_eq!(entry.api, "search");
    assert_eq!(entry.units, 1);
    assert_eq!(entry.state, ChargeState::Reserved);
    assert_eq!(entry.created_at_ms, now);
    assert_eq!(entry.settled_at_ms, None);
    assert_eq!(units_left(&store, "p-soon-older").await, 0);
}

/// `NoPackage` / `Exhausted` / `Expired`, and a failed reservation keeps nothing (not even its
/// `client_msg_id`).
pub async fn reserve_failure_reasons(store: Store) {
    let now = 10_000;
    // No package for this service (one for another service does not count).
    store.insert_package(&package("p-other", APP_A, SVC2, 5, None, 1)).await.unwrap();
    let r = with_msg_id(reservation("r1", APP_A, SVC, 1, now), "m1");
    assert_eq!(store.reserve(&r).await.unwrap(), ReserveOutcome::NoPackage);
    assert_eq!(store.find_idempotent(APP_A, "m1").await.unwrap(), None);

    // Only an expired package, with units left.
    store
        .insert_package(&package("p-expired", APP_A, SVC, 5, Some(now - 1), 1))
        .await
        .unwrap();
    assert_eq!(store.reserve(&r).await.unwrap(), ReserveOutcome::Expired);
    // Expiry is exclusive: a package expiring exactly now is expired.
    store
        .insert_package(&package("p-expiring-now", APP_A, SVC, 5, Some(now), 2))
        .await
        .unwrap();
    assert_eq!(store.reserve(&r).await.unwrap(), ReserveOutcome::Expired);

    // An unexpired package without enough units left.
    let mut empty = package("p-empty", APP_A, SVC, 5, Some(now + 1_000), 3);
    empty.units_left = 1;
    store.insert_package(&empty).await.unwrap();
    assert_eq!(
        store
            .reserve(&with_msg_id(reservation("r1", APP_A, SVC, 2, now), "m1"))
            .await
            .unwrap(),
        ReserveOutcome::Exhausted
    );

    // Nothing was kept by any failure.
    assert_eq!(store.find_idempotent(APP_A, "m1").await.unwrap(), None);
    for p in ["p-expired", "p-expiring-now", "p-empty", "p-other"] {
        assert!(store.ledger(p).await.unwrap().is_empty(), "{p}");
    }
    assert_eq!(units_left(&store, "p-empty").await, 1);
    assert_eq!(units_left(&store, "p-expired").await, 5);

    // The same client_msg_id runs again once it can be paid: not a Duplicate.
    assert_eq!(store.reserve(&r).await.unwrap(), reserved("p-empty"));
    assert_eq!(
        store.find_idempotent(APP_A, "m1").await.unwrap(),
        Some(IdempotencyRecord {
            request_id: "r1".into(),
            answer: None
        })
    );
    assert_eq!(units_left(&store, "p-empty").await, 0);
}

/// `settle`: commit keeps the units spent, release gives them back, and a second settlement of the
/// same entry changes nothing.
pub async fn settle_commit_and_release(store: Store) {
    store.insert_package(&package("pkg", APP_A, SVC, 10, None, 1)).await.unwrap();
    assert_eq!(
        store.reserve(&reservation("r1", APP_A, SVC, 3, 100)).await.unwrap(),
        reserved("pkg")
    );
    assert_eq!(
        store.reserve(&reservation("r2", APP_A, SVC, 2, 200)).await.unwrap(),
        reserved("pkg")
    );
    assert_eq!(units_left(&store, "pkg").await, 5);
    // A request id charges once.
    assert_eq!(
        store.reserve(&reservation("r2", APP_A, SVC, 2, 250)).await,
        Err(StoreError::AlreadyExists)
    );
    assert_eq!(units_left(&store, "pkg").await, 5);

    assert!(store.settle(&settlement("r1", true, 300)).await.unwrap());
    assert_eq!(units_left(&store, "pkg").await, 5);
    assert!(store.settle(&settlement("r2", false, 400)).await.unwrap());
    assert_eq!(units_left(&store, "pkg").await, 7);

    assert!(!store.settle(&settlement("r2", false, 500)).await.unwrap());
    assert!(!store.settle(&settlement("r2", true, 500)).await.unwrap());
    assert!(!store.settle(&settlement("r1", false, 500)).await.unwrap());
    assert!(!store.settle(&settlement("nope", false, 500)).await.unwrap());
    assert_eq!(units_left(&store, "pkg").await, 7);

    let entries = store.ledger("pkg").await.unwrap();
    let summary: Vec<_> = entries.iter().map(|e| (e.request_id.as_str(), e.state, e.settled_at_ms)).collect();
    assert_eq!(
        summary,
        [("r1", ChargeState::Committed, Some(300)), ("r2", ChargeState::Released, Some(400))]
    );
    assert!(store.ledger("nope").await.unwrap().is_empty());
}

/// A repeated `client_msg_id` is a `Duplicate` naming the first request (and, once settled, its
/// answer); the scope is the caller.
pub async fn client_msg_id_duplicate(store: Store) {
    store.insert_package(&package("pkg", APP_A, SVC, 10, None, 1)).await.unwrap();
    let first = with_msg_id(reservation("r1", APP_A, SVC, 1, 100), "m1");
    assert_eq!(store.reserve(&first).await.unwrap(), reserved("pkg"));
    let again = with_msg_id(reservation("r2", APP_A, SVC, 1, 200), "m1");
    let pending = IdempotencyRecord {
        request_id: "r1".into(),
        answer: None,
    };
    assert_eq!(store.reserve(&again).await.unwrap(), ReserveOutcome::Duplicate(pending.clone()));
    assert_eq!(units_left(&store, "pkg").await, 9);
    assert_eq!(store.find_idempotent(APP_A, "m1").await.unwrap(), Some(pending));
    assert_eq!(store.find_idempotent(APP_B, "m1").await.unwrap(), None);

    // Another caller (paid by the same app) has its own scope.
    let mut other_caller = with_msg_id(reservation("r3", APP_A, SVC, 1, 300), "m1");
    other_caller.caller_appid = APP_B.into();
    assert_eq!(store.reserve(&other_caller).await.unwrap(), reserved("pkg"));

    let answer = r#"{"errcode":0,"data":"ok"}"#.to_owned();
    let mut done = settlement("r1", true, 400);
    done.answer = Some((APP_A.into(), "m1".into(), answer.clone()));
    assert!(store.settle(&done).await.unwrap());
    let answered = IdempotencyRecord {
        request_id: "r1".into(),
        answer: Some(answer.clone()),
    };
    assert_eq!(store.reserve(&again).await.unwrap(), ReserveOutcome::Duplicate(answered.clone()));
    // Settling again changes nothing, the answer stays.
    assert!(!store.settle(&done).await.unwrap());
    assert_eq!(store.find_idempotent(APP_A, "m1").await.unwrap(), Some(answered));
    assert_eq!(units_left(&store, "pkg").await, 8);

    // The answer is stored even when the entry was already settled without it.
    assert!(store.settle(&settlement("r3", true, 500)).await.unwrap());
    let mut late = settlement("r3", true, 600);
    late.answer = Some((APP_B.into(), "m1".into(), "late".into()));
    assert!(!store.settle(&late).await.unwrap());
    assert_eq!(
        store.find_idempotent(APP_B, "m1").await.unwrap(),
        Some(IdempotencyRecord {
            request_id: "r3".into(),
            answer: Some("late".into())
        })
    );
}

/// 200 concurrent reservations on 50 units: exactly 50 succeed and the ledger agrees with the
/// package; releasing 10 gives exactly 10 back.
pub async fn reserve_exactly_once(store: Store) {
    let now = 1_000;
    store
        .insert_package(&package("pkg", APP_A, SVC, 50, Some(now + 3_600_000), 1))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let request_id = format!("r{i:03}");
                let outcome = store.reserve(&reservation(&request_id, APP_A, SVC, 1, now)).await.unwrap();
                (request_id, outcome)
            })
        })
        .collect();
    let mut won = Vec::new();
    let mut exhausted = 0;
    for task in tasks {
        match task.await.unwrap() {
            (request_id, ReserveOutcome::Reserved { package_id }) => {
                assert_eq!(package_id, "pkg");
                won.push(request_id);
            }
            (_, ReserveOutcome::Exhausted) => exhausted += 1,
            (request_id, other) => panic!("{request_id}: unexpected {other:?}"),
        }
    }
    assert_eq!(won.len(), 50);
    assert_eq!(exhausted, 150);
    let entries = store.ledger("pkg").await.unwrap();
    assert_eq!(entries.len(), 50);
    assert!(entries.iter().all(|e| e.state == ChargeState::Reserved && e.units == 1));
    assert_eq!(units_left(&store, "pkg").await, 0);

    // Release 10 and commit 10, concurrently.
    let tasks: Vec<_> = won[..20]
        .iter()
        .enumerate()
        .map(|(i, request_id)| {
            let store = store.clone();
            let request_id = request_id.clone();
            tokio::spawn(async move { store.settle(&settlement(&request_id, i % 2 == 0, 2_000)).await.unwrap() })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap());
    }
    let package = store.get_package("pkg").await.unwrap().unwrap();
    assert_eq!(package.units_left, 10);
    let entries = store.ledger("pkg").await.unwrap();
    let count = |state| entries.iter().filter(|e| e.state == state).count();
    assert_eq!(
        (
            count(ChargeState::Reserved),
            count(ChargeState::Committed),
            count(ChargeState::Released)
        ),
        (30, 10, 10)
    );
    let held: i64 = entries.iter().filter(|e| e.state != ChargeState::Released).map(|e| e.units).sum();
    assert_eq!(package.units - package.units_left, held);
}

/// A burst of different operations at once (which a backend may run in one batch): new reservations
/// past the package's units, reservations reusing a taken request id (errors), a settlement and a
/// `client_msg_id` claim; each gets its own answer, and one operation's failure costs the others
/// nothing.
pub async fn mixed_burst_answers_each_operation(store: Store) {
    store.insert_package(&package("pkg", APP_A, SVC, 20, None, 1)).await.unwrap();
    assert_eq!(
        store.reserve(&reservation("taken", APP_A, SVC, 1, 1_000)).await.unwrap(),
        reserved("pkg")
    );
    let mut tasks = Vec::new();
    for i in 0..25 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let request = reservation(&format!("r{i:02}"), APP_A, SVC, 1, 1_000);
            let request = if i == 7 { with_msg_id(request, "m7") } else { request };
            ("new", store.reserve(&request).await.map(|outcome| format!("{outcome:?}")))
        }));
    }
    for _ in 0..5 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            (
                "taken",
                store
                    .reserve(&reservation("taken", APP_A, SVC, 1, 1_100))
                    .await
                    .map(|o| format!("{o:?}")),
            )
        }));
    }
    let settler = {
        let store = store.clone();
        tokio::spawn(async move { store.settle(&settlement("taken", true, 1_200)).await })
    };
    let (mut reserved_count, mut exhausted, mut refused) = (0, 0, 0);
    for task in tasks {
        match task.await.unwrap() {
            ("new", Ok(outcome)) if outcome.starts_with("Reserved") => reserved_count += 1,
            ("new", Ok(outcome)) if outcome == "Exhausted" => exhausted += 1,
            // Refused as a charged request id, or (once the package is empty) for want of units.
            ("taken", Err(StoreError::AlreadyExists)) => refused += 1,
            ("taken", Ok(outcome)) if outcome == "Exhausted" => refused += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(settler.await.unwrap().unwrap(), "the settlement of `taken` went through");
    assert_eq!((reserved_count, exhausted, refused), (19, 6, 5));
    assert_eq!(units_left(&store, "pkg").await, 0);
    let entries = store.ledger("pkg").await.unwrap();
    assert_eq!(entries.len(), 20);
    assert_eq!(entries.iter().filter(|e| e.state == ChargeState::Committed).count(), 1);
    // The claim of r07 stays only if r07 reserved.
    let claim = store.find_idempotent(APP_A, "m7").await.unwrap();
    let r07_reserved = entries.iter().any(|e| e.request_id == "r07");
    assert_eq!(claim.is_some(), r07_reserved, "{claim:?}");
}

/// A steady flood of reservations and settlements does not keep the store's other writes (here, the
/// call log) waiting until it ends: each of them goes through while the flood still runs. (On SQLite
/// the ledger's leader gives the single writer up between terms; a leader that kept it for as long as
/// operations kept coming would fail this.) The flood itself stays exact.
pub async fn ledger_flood_leaves_room_for_other_writes(store: Store) {
    const WORKERS: usize = 32;
    const ROUNDS: usize = 150;
    let units = (WORKERS * ROUNDS) as i64;
    store.insert_package(&package("pkg", APP_A, SVC, units, None, 1)).await.unwrap();
    let finished = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let flood: Vec<_> = (0..WORKERS)
        .map(|worker| {
            let (store, finished) = (store.clone(), finished.clone());
            tokio::spawn(async move {
                for round in 0..ROUNDS {
                    let request_id = format!("f{worker:02}-{round:03}");
                    let outcome = store.reserve(&reservation(&request_id, APP_A, SVC, 1, 1_000)).await.unwrap();
                    assert_eq!(outcome, reserved("pkg"));
                    // Every third call fails and gives its unit back.
                    assert!(store.settle(&settlement(&request_id, round % 3 != 0, 1_001)).await.unwrap());
                }
                finished.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            })
        })
        .collect();
    for i in 0..10 {
        store
            .append_calls(&[call(&format!("log{i}"), 1_000 + i, APP_A, SVC, "api", 0)])
            .await
            .unwrap();
    }
    let done_by_then = finished.load(std::sync::atomic::Ordering::SeqCst);
    for worker in flood {
        worker.await.unwrap();
    }
    assert!(
        done_by_then < WORKERS,
        "the call log's writes waited until the whole ledger flood was over"
    );
    let committed = (WORKERS * ROUNDS - WORKERS * ROUNDS.div_ceil(3)) as i64;
    assert_eq!(units_left(&store, "pkg").await, units - committed);
    let entries = store.ledger("pkg").await.unwrap();
    assert_eq!(entries.len(), WORKERS * ROUNDS);
    assert_eq!(
        entries.iter().filter(|e| e.state == ChargeState::Committed).count() as i64,
        committed
    );
}

/// 50 concurrent reservations with the same `client_msg_id`: one reserves, 49 are duplicates of it.
pub async fn client_msg_id_exactly_once(store: Store) {
    store.insert_package(&package("pkg", APP_A, SVC, 100, None, 1)).await.unwrap();
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let request_id = format!("r{i:02}");
                let outcome = store
                    .reserve(&with_msg_id(reservation(&request_id, APP_A, SVC, 1, 1_000), "same"))
                    .await
                    .unwrap();
                (request_id, outcome)
            })
        })
        .collect();
    let mut winners = Vec::new();
    let mut duplicates = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (request_id, ReserveOutcome::Reserved { .. }) => winners.push(request_id),
            (_, ReserveOutcome::Duplicate(record)) => duplicates.push(record),
            (request_id, other) => panic!("{request_id}: unexpected {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1);
    assert_eq!(duplicates.len(), 49);
    assert!(duplicates.iter().all(|d| d.request_id == winners[0] && d.answer.is_none()));
    assert_eq!(units_left(&store, "pkg").await, 99);
    assert_eq!(store.ledger("pkg").await.unwrap().len(), 1);
}

/// Concurrent reservations with one `client_msg_id` that all fail: none leaves a claim behind for
/// the others (a claim rolled back lets the next one in), so none is a `Duplicate`.
pub async fn client_msg_id_failed_claims_do_not_stick(store: Store) {
    let mut empty = package("pkg", APP_A, SVC, 5, None, 1);
    empty.units_left = 0;
    store.insert_package(&empty).await.unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .reserve(&with_msg_id(reservation(&format!("r{i:02}"), APP_A, SVC, 1, 1_000), "same"))
                    .await
                    .unwrap()
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), ReserveOutcome::Exhausted);
    }
    assert_eq!(store.find_idempotent(APP_A, "same").await.unwrap(), None);
}

/// `reap_reservations` releases old reserved entries, gives their units back and forgets their
/// unanswered `client_msg_id`s; settled and newer entries are left alone.
pub async fn reap_reservations(store: Store) {
    store.insert_package(&package("pkg", APP_A, SVC, 10, None, 1)).await.unwrap();
    store.insert_package(&package("pkg-b", APP_B, SVC, 10, None, 1)).await.unwrap();
    let old1 = with_msg_id(reservation("old1", APP_A, SVC, 2, 1_000), "m-old1");
    assert_eq!(store.reserve(&old1).await.unwrap(), reserved("pkg"));
    assert_eq!(
        store.reserve(&reservation("old2", APP_A, SVC, 1, 1_500)).await.unwrap(),
        reserved("pkg")
    );
    assert_eq!(
        store.reserve(&reservation("old-b", APP_B, SVC, 4, 1_600)).await.unwrap(),
        reserved("pkg-b")
    );
    let answered = with_msg_id(reservation("answered", APP_A, SVC, 1, 1_200), "m-ans");
    assert_eq!(store.reserve(&answered).await.unwrap(), reserved("pkg"));
    let mut done = settlement("answered", true, 1_300);
    done.answer = Some((APP_A.into(), "m-ans".into(), "answer".into()));
    assert!(store.settle(&done).await.unwrap());
    let new = with_msg_id(reservation("new", APP_A, SVC, 1, 5_000), "m-new");
    assert_eq!(store.reserve(&new).await.unwrap(), reserved("pkg"));
    assert_eq!(units_left(&store, "pkg").await, 5);

    assert_eq!(store.reap_reservations(2_000, 6_000).await.unwrap(), 3);
    assert_eq!(units_left(&store, "pkg").await, 8);
    assert_eq!(units_left(&store, "pkg-b").await, 10);
    let states: Vec<_> = store
        .ledger("pkg")
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.request_id, e.state, e.settled_at_ms))
        .collect();
    assert_eq!(
        states,
        [
            ("old1".to_owned(), ChargeState::Released, Some(6_000)),
            ("answered".to_owned(), ChargeState::Committed, Some(1_300)),
            ("old2".to_owned(), ChargeState::Released, Some(6_000)),
            ("new".to_owned(), ChargeState::Reserved, None),
        ]
    );
    assert_eq!(store.find_idempotent(APP_A, "m-old1").await.unwrap(), None);
    assert!(store.find_idempotent(APP_A, "m-new").await.unwrap().is_some());
    assert_eq!(
        store.find_idempotent(APP_A, "m-ans").await.unwrap().unwrap().answer.as_deref(),
        Some("answer")
    );

    // A late settlement of a reaped entry counts nothing; a retry of its client_msg_id runs again.
    assert!(!store.settle(&settlement("old1", true, 7_000)).await.unwrap());
    assert_eq!(units_left(&store, "pkg").await, 8);
    let retry = with_msg_id(reservation("old1-retry", APP_A, SVC, 2, 7_000), "m-old1");
    assert_eq!(store.reserve(&retry).await.unwrap(), reserved("pkg"));
    assert_eq!(store.reap_reservations(2_000, 8_000).await.unwrap(), 0);
}

/// `cancel_reservation` takes a reservation back whole while it is `reserved`: the charge is gone
/// from the ledger, its units are back and its unanswered `client_msg_id` is forgotten, so a retry
/// runs. A settled charge, a cancelled one or an unknown request id changes nothing.
pub async fn cancel_reservation(store: Store) {
    store.insert_package(&package("pkg", APP_A, SVC, 10, None, 1)).await.unwrap();
    let limited = with_msg_id(reservation("limited", APP_A, SVC, 3, 1_000), "m-limited");
    assert_eq!(store.reserve(&limited).await.unwrap(), reserved("pkg"));
    let kept = with_msg_id(reservation("kept", APP_A, SVC, 1, 1_100), "m-kept");
    assert_eq!(store.reserve(&kept).await.unwrap(), reserved("pkg"));
    assert_eq!(units_left(&store, "pkg").await, 6);

    assert!(store.cancel_reservation("limited").await.unwrap());
    assert_eq!(units_left(&store, "pkg").await, 9);
    assert_eq!(store.find_idempotent(APP_A, "m-limited").await.unwrap(), None);
    let ledger: Vec<_> = store
        .ledger("pkg")
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.request_id, e.state))
        .collect();
    assert_eq!(ledger, [("kept".to_owned(), ChargeState::Reserved)], "the cancelled charge is gone");
    // Once only; a late settlement of it counts nothing.
    assert!(!store.cancel_reservation("limited").await.unwrap());
    assert!(!store.settle(&settlement("limited", true, 1_200)).await.unwrap());
    assert!(!store.cancel_reservation("nope").await.unwrap());
    assert_eq!(units_left(&store, "pkg").await, 9);

    // A settled charge stays as it is, with its answer.
    let mut done = settlement("kept", true, 1_300);
    done.answer = Some((APP_A.into(), "m-kept".into(), "answer".into()));
    assert!(store.settle(&done).await.unwrap());
    assert!(!store.cancel_reservation("kept").await.unwrap());
    assert_eq!(units_left(&store, "pkg").await, 9);
    assert_eq!(
        store.find_idempotent(APP_A, "m-kept").await.unwrap().unwrap().answer.as_deref(),
        Some("answer")
    );

    // The cancelled call's client_msg_id runs again, and the reaper finds nothing of it.
    let retry = with_msg_id(reservation("limited-retry", APP_A, SVC, 3, 2_000), "m-limited");
    assert_eq!(store.reserve(&retry).await.unwrap(), reserved("pkg"));
    assert_eq!(units_left(&store, "pkg").await, 6);
    assert_eq!(store.reap_reservations(1_500, 3_000).await.unwrap(), 0);
}

/// `sweep_idempotency` deletes answered records older than the given time, and only those.
pub async fn sweep_idempotency(store: Store) {
    store.insert_package(&package("pkg", APP_A, SVC, 10, None, 1)).await.unwrap();
    for (request_id, msg, at, answer) in [
        ("r1", "m1", 1_000, Some("a1")),
        ("r2", "m2", 1_000, None),
        ("r3", "m3", 5_000, Some("a3")),
    ] {
        assert_eq!(
            store
                .reserve(&with_msg_id(reservation(request_id, APP_A, SVC, 1, at), msg))
                .await
                .unwrap(),
            reserved("pkg")
        );
        if let Some(answer) = answer {
            let mut done = settlement(request_id, true, at + 10);
            done.answer = Some((APP_A.into(), msg.into(), answer.into()));
            assert!(store.settle(&done).await.unwrap());
        }
    }
    assert_eq!(store.sweep_idempotency(2_000).await.unwrap(), 1);
    assert_eq!(store.find_idempotent(APP_A, "m1").await.unwrap(), None);
    assert!(store.find_idempotent(APP_A, "m2").await.unwrap().is_some());
    assert!(store.find_idempotent(APP_A, "m3").await.unwrap().is_some());
    assert_eq!(store.sweep_idempotency(2_000).await.unwrap(), 0);
    // The ledger is not touched.
    assert_eq!(store.ledger("pkg").await.unwrap().len(), 3);
}

/// Racing settlements of the same charges (a commit and a release each, all at once, as when a
/// call's answer and the reaper meet) settle each charge exactly once: one of the two answers
/// `true`, and the units left are what the committed charges leave.
pub async fn settle_exactly_once_under_races(store: Store) {
    let charges = 24_usize;
    store.insert_package(&package("pkg", APP_A, SVC, 100, None, 1)).await.unwrap();
    for i in 0..charges {
        let request = reservation(&format!("s{i:02}"), APP_A, SVC, 2, 1_000);
        assert_eq!(store.reserve(&request).await.unwrap(), reserved("pkg"));
    }
    let tasks: Vec<_> = (0..charges * 2)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                let (i, commit) = (n / 2, n % 2 == 0);
                let settled = store.settle(&settlement(&format!("s{i:02}"), commit, 2_000)).await.unwrap();
                (i, commit, settled)
            })
        })
        .collect();
    let mut committed = 0;
    let mut settled_per_charge = vec![0; charges];
    for task in tasks {
        let (i, commit, settled) = task.await.unwrap();
        if settled {
            settled_per_charge[i] += 1;
            committed += i64::from(commit);
        }
    }
    assert!(
        settled_per_charge.iter().all(|&n| n == 1),
        "each charge settles once: {settled_per_charge:?}"
    );
    assert_eq!(units_left(&store, "pkg").await, 100 - 2 * committed);
    let ledger = store.ledger("pkg").await.unwrap();
    let spent: i64 = ledger.iter().filter(|e| e.state == ChargeState::Committed).map(|e| e.units).sum();
    assert_eq!(spent, 2 * committed, "the ledger agrees with the units left");
}

/// Three nodes on one database (three stores opened on its URL), each batching its own concurrent
/// reservations: 240 calls, every fourth with a `client_msg_id` of its own, on a 60-unit package
/// give exactly 60 reservations, whichever node took them, and the ledger agrees with the package.
pub async fn reserve_exactly_once_across_nodes(url: String) {
    let first = crate::open(&url).await.unwrap();
    first.insert_package(&package("pkg", APP_A, SVC, 60, None, 1)).await.unwrap();
    let mut nodes = vec![first];
    for _ in 1..3 {
        nodes.push(crate::open(&url).await.unwrap());
    }
    let tasks: Vec<_> = (0..240)
        .map(|i| {
            let node = nodes[i % nodes.len()].clone();
            tokio::spawn(async move {
                let request = reservation(&format!("n{i:03}"), APP_A, SVC, 1, 1_000);
                let request = if i % 4 == 0 {
                    with_msg_id(request, &format!("key-{i}"))
                } else {
                    request
                };
                node.reserve(&request).await.unwrap()
            })
        })
        .collect();
    let (mut reserved, mut exhausted) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            ReserveOutcome::Reserved { package_id } => {
                assert_eq!(package_id, "pkg");
                reserved += 1;
            }
            ReserveOutcome::Exhausted => exhausted += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((reserved, exhausted), (60, 180));
    assert_eq!(units_left(&nodes[1], "pkg").await, 0);
    let entries = nodes[2].ledger("pkg").await.unwrap();
    assert_eq!(entries.len(), 60);
    assert!(entries.iter().all(|e| e.state == ChargeState::Reserved && e.units == 1));
}
