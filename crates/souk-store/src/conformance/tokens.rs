//! Conformance cases: access tokens and the force-refresh counter.

use souk_core::model::{ForceRefresh, Supersede, TokenKind};
use souk_core::store::StoreError;

use super::builders::{token, APP_A, APP_B};
use super::Store;

/// Issue, find, current; an overlap supersedes live tokens of the same family only, each dying at
/// the sooner of the overlap end and its own expiry; `Supersede::Nothing` leaves them live.
pub async fn tokens_issue_and_supersede(store: Store) {
    let s1 = token("s1", APP_A, TokenKind::Stable, 1_000);
    let p1 = token("p1", APP_A, TokenKind::Plain, 1_000);
    assert!(store.issue_token(&s1, Supersede::Nothing, None).await.unwrap());
    assert!(store.issue_token(&p1, Supersede::Nothing, None).await.unwrap());
    assert_eq!(store.find_token("s1").await.unwrap(), Some(s1.clone()));
    assert_eq!(store.find_token("nope").await.unwrap(), None);
    assert_eq!(store.current_token(APP_A, TokenKind::Stable).await.unwrap(), Some(s1.clone()));
    assert_eq!(store.current_token(APP_A, TokenKind::Plain).await.unwrap(), Some(p1.clone()));
    assert_eq!(store.current_token(APP_B, TokenKind::Plain).await.unwrap(), None);
    assert_eq!(
        store.issue_token(&s1, Supersede::Nothing, None).await,
        Err(StoreError::AlreadyExists)
    );
    // A hash stored already is refused before anything is superseded.
    assert_eq!(
        store.issue_token(&s1, Supersede::Overlap { dies_at_ms: 1_500 }, None).await,
        Err(StoreError::AlreadyExists)
    );
    assert_eq!(store.current_token(APP_A, TokenKind::Stable).await.unwrap(), Some(s1.clone()));

    // Overlap ending before the old token's expiry.
    let s2 = token("s2", APP_A, TokenKind::Stable, 2_000);
    assert!(store
        .issue_token(&s2, Supersede::Overlap { dies_at_ms: 302_000 }, None)
        .await
        .unwrap());
    let old = store.find_token("s1").await.unwrap().unwrap();
    assert!(old.superseded);
    assert_eq!(old.dies_at_ms, Some(302_000));
    assert_eq!(store.current_token(APP_A, TokenKind::Stable).await.unwrap(), Some(s2.clone()));
    // The plain family is untouched.
    assert_eq!(store.find_token("p1").await.unwrap(), Some(p1.clone()));

    // Overlap ending after the old token's expiry: it dies at its expiry.
    let s3 = token("s3", APP_A, TokenKind::Stable, 3_000);
    assert!(store
        .issue_token(&s3, Supersede::Overlap { dies_at_ms: 99_999_999 }, None)
        .await
        .unwrap());
    let old = store.find_token("s2").await.unwrap().unwrap();
    assert!(old.superseded);
    assert_eq!(old.dies_at_ms, Some(s2.expires_at_ms));
    // An already superseded token is not touched again.
    assert_eq!(store.find_token("s1").await.unwrap().unwrap().dies_at_ms, Some(302_000));

    // Nothing: the older token stays live, the newest is current.
    let s4 = token("s4", APP_A, TokenKind::Stable, 4_000);
    assert!(store.issue_token(&s4, Supersede::Nothing, None).await.unwrap());
    assert_eq!(store.find_token("s3").await.unwrap(), Some(s3));
    assert_eq!(store.current_token(APP_A, TokenKind::Stable).await.unwrap(), Some(s4.clone()));

    // Same issue time: the larger hash is the newest.
    let s5 = token("s5", APP_A, TokenKind::Stable, 4_000);
    assert!(store.issue_token(&s5, Supersede::Nothing, None).await.unwrap());
    assert_eq!(store.current_token(APP_A, TokenKind::Stable).await.unwrap(), Some(s5));
}

/// `expect_current`: a mismatch answers `false` and changes nothing; a match rotates.
pub async fn tokens_expect_current(store: Store) {
    let s1 = token("s1", APP_A, TokenKind::Stable, 1_000);
    assert!(store.issue_token(&s1, Supersede::Nothing, Some(None)).await.unwrap());

    let s2 = token("s2", APP_A, TokenKind::Stable, 2_000);
    let overlap = Supersede::Overlap { dies_at_ms: 302_000 };
    assert!(!store.issue_token(&s2, overlap, Some(None)).await.unwrap());
    assert!(!store.issue_token(&s2, overlap, Some(Some("wrong"))).await.unwrap());
    assert_eq!(store.find_token("s2").await.unwrap(), None);
    assert_eq!(store.find_token("s1").await.unwrap(), Some(s1.clone()));

    // The other family's token does not count as current.
    let p1 = token("p1", APP_A, TokenKind::Plain, 5_000);
    assert!(store.issue_token(&p1, Supersede::Nothing, Some(None)).await.unwrap());

    assert!(store.issue_token(&s2, overlap, Some(Some("s1"))).await.unwrap());
    assert!(store.find_token("s1").await.unwrap().unwrap().superseded);
    assert_eq!(store.current_token(APP_A, TokenKind::Stable).await.unwrap(), Some(s2.clone()));

    // The loser of a race sees the winner's token and changes nothing.
    let s3 = token("s3", APP_A, TokenKind::Stable, 3_000);
    assert!(!store.issue_token(&s3, overlap, Some(Some("s1"))).await.unwrap());
    assert_eq!(store.find_token("s3").await.unwrap(), None);
    assert_eq!(store.find_token("s2").await.unwrap(), Some(s2));
}

/// Many nodes racing the same rotation: exactly one wins.
pub async fn tokens_rotation_race(store: Store) {
    let s0 = token("s0", APP_A, TokenKind::Stable, 1_000);
    assert!(store.issue_token(&s0, Supersede::Nothing, Some(None)).await.unwrap());
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let next = token(&format!("s1-{i:02}"), APP_A, TokenKind::Stable, 2_000 + i);
                store
                    .issue_token(&next, Supersede::Overlap { dies_at_ms: 300_000 }, Some(Some("s0")))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        if task.await.unwrap() {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
    let current = store.current_token(APP_A, TokenKind::Stable).await.unwrap().unwrap();
    assert!(current.token_hash.starts_with("s1-"));
    assert!(store.find_token("s0").await.unwrap().unwrap().superseded);
}

/// `kill_tokens` makes every still-working token of the family die now, and only those.
pub async fn tokens_kill(store: Store) {
    let now = 10_000;
    let mut dead = token("s0", APP_A, TokenKind::Stable, 500);
    dead.superseded = true;
    dead.dies_at_ms = Some(now - 1);
    assert!(store.issue_token(&dead, Supersede::Nothing, None).await.unwrap());
    let s1 = token("s1", APP_A, TokenKind::Stable, 1_000);
    assert!(store.issue_token(&s1, Supersede::Nothing, None).await.unwrap());
    let s2 = token("s2", APP_A, TokenKind::Stable, 2_000);
    assert!(store
        .issue_token(&s2, Supersede::Overlap { dies_at_ms: 300_000 }, None)
        .await
        .unwrap());
    let p1 = token("p1", APP_A, TokenKind::Plain, 2_000);
    assert!(store.issue_token(&p1, Supersede::Nothing, None).await.unwrap());
    let b1 = token("b1", APP_B, TokenKind::Stable, 2_000);
    assert!(store.issue_token(&b1, Supersede::Nothing, None).await.unwrap());

    assert_eq!(store.kill_tokens(APP_A, TokenKind::Stable, now).await.unwrap(), 2);
    for hash in ["s1", "s2"] {
        let t = store.find_token(hash).await.unwrap().unwrap();
        assert!(t.superseded, "{hash}");
        assert_eq!(t.dies_at_ms, Some(now), "{hash}");
    }
    assert_eq!(store.find_token("s0").await.unwrap(), Some(dead));
    assert_eq!(store.current_token(APP_A, TokenKind::Stable).await.unwrap(), None);
    assert_eq!(store.find_token("p1").await.unwrap(), Some(p1));
    assert_eq!(store.find_token("b1").await.unwrap(), Some(b1));
    assert_eq!(store.kill_tokens(APP_A, TokenKind::Stable, now).await.unwrap(), 0);
}

/// `sweep_tokens` deletes tokens that expired before the given time.
pub async fn tokens_sweep(store: Store) {
    for (hash, issued) in [("t1", 1_000), ("t2", 2_000), ("t3", 3_000)] {
        assert!(store
            .issue_token(&token(hash, APP_A, TokenKind::Plain, issued), Supersede::Nothing, None)
            .await
            .unwrap());
    }
    // t1 expires at 7_201_000, t2 at 7_202_000, t3 at 7_203_000.
    assert_eq!(store.sweep_tokens(7_202_000).await.unwrap(), 1);
    assert_eq!(store.sweep_tokens(7_203_001).await.unwrap(), 2);
    assert_eq!(store.find_token("t3").await.unwrap(), None);
    assert_eq!(store.sweep_tokens(9_999_999_999).await.unwrap(), 0);
}

/// `count_force_refresh`: minimum gap, daily allowance, next-day reset, per app.
pub async fn force_refresh_limits(store: Store) {
    let gap = 60_000;
    let check = |day: i64, now: i64| {
        let store = store.clone();
        async move { store.count_force_refresh(APP_A, day, now, gap, 3).await.unwrap() }
    };
    assert_eq!(check(1, 1_000).await, ForceRefresh::Allowed);
    assert_eq!(check(1, 60_999).await, ForceRefresh::TooSoon);
    assert_eq!(check(1, 61_000).await, ForceRefresh::Allowed);
    assert_eq!(check(1, 121_000).await, ForceRefresh::Allowed);
    assert_eq!(check(1, 181_000).await, ForceRefresh::DailyLimit);
    // A refusal changes nothing: the last counted time is still 121_000, so this is not TooSoon.
    assert_eq!(check(1, 181_001).await, ForceRefresh::DailyLimit);
    // The next day starts over, still minding the gap.
    assert_eq!(check(2, 241_000).await, ForceRefresh::Allowed);
    assert_eq!(check(2, 241_500).await, ForceRefresh::TooSoon);
    assert_eq!(check(2, 301_000).await, ForceRefresh::Allowed);
    assert_eq!(check(2, 361_000).await, ForceRefresh::Allowed);
    assert_eq!(check(2, 421_000).await, ForceRefresh::DailyLimit);
    // Apps are counted separately.
    assert_eq!(
        store.count_force_refresh(APP_B, 2, 421_000, gap, 3).await.unwrap(),
        ForceRefresh::Allowed
    );
    assert_eq!(
        store.count_force_refresh("wx00000000000000cc", 2, 421_000, gap, 0).await.unwrap(),
        ForceRefresh::DailyLimit
    );
}

/// Concurrent force refreshes on one app: the gap lets exactly one through.
pub async fn force_refresh_race(store: Store) {
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.count_force_refresh(APP_A, 7, 1_000 + i, 60_000, 100).await.unwrap() })
        })
        .collect();
    let mut allowed = 0;
    for task in tasks {
        match task.await.unwrap() {
            ForceRefresh::Allowed => allowed += 1,
            ForceRefresh::TooSoon => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(allowed, 1);
}
