//! Conformance cases: async jobs (submission with its reservation, leased claims, exactly-once
//! completion with settlement, reaping around jobs, sweeping and listing).

use std::collections::BTreeSet;
use std::future::Future;

use souk_core::model::{ChargeState, IdempotencyRecord, ReserveOutcome};
use souk_core::store::jobs::{JobCompletion, JobFilter, JobReschedule, JobState, NewJob};

use super::builders::{package, reservation, reserved, units_left, with_msg_id, APP_A, APP_B, SVC};
use super::Store;

/// A job's extra fields: a body, a deadline an hour after `now_ms`, no answer.
pub fn new_job(now_ms: i64) -> NewJob {
    NewJob {
        openid: Some("o-user".to_owned()),
        body: r#"{"q":"x"}"#.to_owned(),
        deadline_ms: now_ms + 3_600_000,
        answer: None,
    }
}

fn completion(request_id: &str, succeeded: bool, now_ms: i64) -> JobCompletion {
    JobCompletion {
        request_id: request_id.to_owned(),
        succeeded,
        result: if succeeded {
            r#"{"ok":1}"#
        } else {
            r#"{"code":"MarketCallFailed"}"#
        }
        .to_owned(),
        now_ms,
    }
}

fn reschedule(request_id: &str, owner: &str, state: JobState, due_at_ms: i64) -> JobReschedule {
    JobReschedule {
        request_id: request_id.to_owned(),
        owner: owner.to_owned(),
        state,
        due_at_ms,
        last_error: Some("provider unreachable".to_owned()),
    }
}

async fn charge_state(store: &Store, package_id: &str, request_id: &str) -> Option<ChargeState> {
    let entries = store.ledger(package_id).await.unwrap();
    entries.into_iter().find(|e| e.request_id == request_id).map(|e| e.state)
}

/// `submit_job` reserves and inserts the job in one transaction: a job exists exactly when its units
/// are reserved; a refused reservation leaves no job and no `client_msg_id`; a duplicate answers the
/// first job's kept answer.
pub async fn jobs_submit_is_atomic_with_reservation(store: Store) {
    let now = 10_000;
    store.insert_package(&package("pkg", APP_A, SVC, 3, None, 1)).await.unwrap();
    let mut job = new_job(now);
    job.answer = Some("accepted j1".to_owned());
    let request = with_msg_id(reservation("j1", APP_A, SVC, 2, now), "m1");
    assert_eq!(store.submit_job(&request, &job).await.unwrap(), reserved("pkg"));
    let stored = store.get_job("j1").await.unwrap().expect("the job is stored");
    assert_eq!(stored.request_id, "j1");
    assert_eq!(stored.appid, APP_A);
    assert_eq!(stored.payer_appid, APP_A);
    assert_eq!(stored.openid.as_deref(), Some("o-user"));
    assert_eq!((stored.service_id.as_str(), stored.api.as_str()), (SVC, "search"));
    assert_eq!(stored.package_id, "pkg");
    assert_eq!(stored.body, job.body);
    assert_eq!(stored.state, JobState::Pending);
    assert_eq!(stored.attempts, 0);
    assert_eq!(
        (stored.due_at_ms, stored.created_at_ms, stored.deadline_ms),
        (now, now, job.deadline_ms)
    );
    assert_eq!(
        (stored.lease_owner, stored.lease_until_ms, stored.finished_at_ms),
        (None, None, None)
    );
    assert_eq!((stored.result, stored.last_error), (None, None));
    assert_eq!(units_left(&store, "pkg").await, 1);
    assert_eq!(charge_state(&store, "pkg", "j1").await, Some(ChargeState::Reserved));
    assert_eq!(
        store.find_idempotent(APP_A, "m1").await.unwrap(),
        Some(IdempotencyRecord {
            request_id: "j1".into(),
            answer: Some("accepted j1".into())
        }),
        "the accepted answer is kept with the claim"
    );

    // The same client_msg_id: the first job's answer, nothing reserved, no second job.
    let again = with_msg_id(reservation("j1-again", APP_A, SVC, 1, now), "m1");
    match store.submit_job(&again, &new_job(now)).await.unwrap() {
        ReserveOutcome::Duplicate(first) => assert_eq!(first.request_id, "j1"),
        other => panic!("expected a duplicate, got {other:?}"),
    }
    assert_eq!(store.get_job("j1-again").await.unwrap(), None);

    // Too few units, or no package: nothing is written.
    let big = with_msg_id(reservation("j2", APP_A, SVC, 2, now), "m2");
    assert_eq!(store.submit_job(&big, &new_job(now)).await.unwrap(), ReserveOutcome::Exhausted);
    assert_eq!(store.get_job("j2").await.unwrap(), None);
    assert_eq!(store.find_idempotent(APP_A, "m2").await.unwrap(), None);
    let none = reservation("j3", APP_B, SVC, 1, now);
    assert_eq!(store.submit_job(&none, &new_job(now)).await.unwrap(), ReserveOutcome::NoPackage);
    assert_eq!(store.get_job("j3").await.unwrap(), None);
    assert_eq!(units_left(&store, "pkg").await, 1);
    assert_eq!(store.ledger("pkg").await.unwrap().len(), 1);
}

/// Claims take due, unleased jobs with a lease and one more attempt; a live lease keeps others off,
/// a lapsed one lets another worker take over (and the old owner can no longer renew or reschedule);
/// rescheduled jobs wait for their due time, waiting jobs for their deadline; concurrent claimers
/// never share a job.
pub async fn jobs_claim_with_lease_and_takeover(store: Store) {
    let now = 100_000;
    let lease = 30_000;
    store.insert_package(&package("pkg", APP_A, SVC, 100, None, 1)).await.unwrap();
    store
        .submit_job(&reservation("j1", APP_A, SVC, 1, now), &new_job(now))
        .await
        .unwrap();
    assert!(store.claim_jobs(now - 1, lease, 10, "a").await.unwrap().is_empty(), "not due yet");
    let claimed = store.claim_jobs(now, lease, 10, "a").await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].request_id, "j1");
    assert_eq!(claimed[0].attempts, 1);
    assert_eq!(claimed[0].lease_owner.as_deref(), Some("a"));
    assert_eq!(claimed[0].lease_until_ms, Some(now + lease));
    assert!(store.claim_jobs(now + 1, lease, 10, "b").await.unwrap().is_empty(), "leased");
    assert!(!store.reschedule_job(&reschedule("j1", "b", JobState::Pending, now)).await.unwrap());
    assert!(store.renew_job_lease("j1", "a", now + 2 * lease).await.unwrap());
    assert!(!store.renew_job_lease("j1", "b", now + 2 * lease).await.unwrap());
    assert!(store.claim_jobs(now + lease, lease, 10, "b").await.unwrap().is_empty(), "renewed");

    // "a" dies: its lease lapses and "b" takes over.
    let later = now + 2 * lease;
    let taken = store.claim_jobs(later, lease, 10, "b").await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!((taken[0].attempts, taken[0].lease_owner.as_deref()), (2, Some("b")));
    assert!(!store.renew_job_lease("j1", "a", later + lease).await.unwrap());
    assert!(!store
        .reschedule_job(&reschedule("j1", "a", JobState::Pending, later))
        .await
        .unwrap());

    // A retry later: not claimable before its due time.
    assert!(store
        .reschedule_job(&reschedule("j1", "b", JobState::Pending, later + 5_000))
        .await
        .unwrap());
    let job = store.get_job("j1").await.unwrap().unwrap();
    assert_eq!(
        (job.state, job.due_at_ms, job.lease_owner),
        (JobState::Pending, later + 5_000, None)
    );
    assert_eq!(job.last_error.as_deref(), Some("provider unreachable"));
    assert!(store.claim_jobs(later + 4_999, lease, 10, "c").await.unwrap().is_empty());
    let retried = store.claim_jobs(later + 5_000, lease, 10, "c").await.unwrap();
    assert_eq!((retried.len(), retried[0].attempts), (1, 3));

    // Waiting for the provider's callback: claimable only at the deadline.
    let deadline = store.get_job("j1").await.unwrap().unwrap().deadline_ms;
    assert!(store
        .reschedule_job(&reschedule("j1", "c", JobState::Waiting, deadline))
        .await
        .unwrap());
    assert_eq!(store.get_job("j1").await.unwrap().unwrap().state, JobState::Waiting);
    assert!(store.claim_jobs(deadline - 1, lease, 10, "d").await.unwrap().is_empty());
    let expired = store.claim_jobs(deadline, lease, 10, "d").await.unwrap();
    assert_eq!((expired.len(), expired[0].state), (1, JobState::Waiting));

    // Finished jobs are never claimed, renewed or rescheduled.
    assert!(store.complete_job(&completion("j1", false, deadline)).await.unwrap());
    assert!(store.claim_jobs(i64::MAX / 4, lease, 10, "e").await.unwrap().is_empty());
    assert!(!store.renew_job_lease("j1", "d", deadline + lease).await.unwrap());
    assert!(!store
        .reschedule_job(&reschedule("j1", "d", JobState::Pending, deadline))
        .await
        .unwrap());

    // 40 due jobs, 8 concurrent claimers taking 3 at a time until none is left: each job once.
    for i in 0..40 {
        store
            .submit_job(&reservation(&format!("k{i:02}"), APP_A, SVC, 1, now + i), &new_job(now))
            .await
            .unwrap();
    }
    let claimers: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let batch = store.claim_jobs(now + 100, lease, 3, &format!("w{i}")).await.unwrap();
                    if batch.is_empty() {
                        return mine;
                    }
                    mine.extend(batch.into_iter().map(|job| job.request_id));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for claimer in claimers {
        all.extend(claimer.await.unwrap());
    }
    let distinct: BTreeSet<&String> = all.iter().collect();
    assert_eq!((all.len(), distinct.len()), (40, 40), "every job claimed exactly once");
}

/// 32 concurrent completers of one job (half succeed, half fail): exactly one wins, the job keeps
/// the winner's result, and the units are settled once, the winner's way.
pub async fn jobs_complete_exactly_once(store: Store) {
    let now = 50_000;
    store.insert_package(&package("pkg", APP_A, SVC, 10, None, 1)).await.unwrap();
    for request_id in ["j-race", "j-plain"] {
        assert_eq!(
            store
                .submit_job(&reservation(request_id, APP_A, SVC, 3, now), &new_job(now))
                .await
                .unwrap(),
            reserved("pkg")
        );
    }
    assert_eq!(units_left(&store, "pkg").await, 4);
    store.claim_jobs(now, 30_000, 10, "worker").await.unwrap();
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let succeeded = i % 2 == 0;
                let won = store.complete_job(&completion("j-race", succeeded, now + 10)).await.unwrap();
                (won, succeeded)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let (won, succeeded) = task.await.unwrap();
        if won {
            winners.push(succeeded);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one completer wins");
    let succeeded = winners[0];
    let job = store.get_job("j-race").await.unwrap().unwrap();
    let expected_state = if succeeded { JobState::Succeeded } else { JobState::Failed };
    assert_eq!(job.state, expected_state);
    assert_eq!(job.result, Some(completion("j-race", succeeded, 0).result));
    assert_eq!(job.finished_at_ms, Some(now + 10));
    assert_eq!((job.lease_owner, job.lease_until_ms), (None, None));
    let expected_charge = if succeeded { ChargeState::Committed } else { ChargeState::Released };
    assert_eq!(charge_state(&store, "pkg", "j-race").await, Some(expected_charge));
    assert_eq!(units_left(&store, "pkg").await, if succeeded { 4 } else { 7 });

    // A later completion of either kind changes nothing.
    assert!(!store.complete_job(&completion("j-race", !succeeded, now + 20)).await.unwrap());
    assert_eq!(store.get_job("j-race").await.unwrap().unwrap().state, expected_state);
    assert_eq!(units_left(&store, "pkg").await, if succeeded { 4 } else { 7 });

    // A job completes without a lease too (a provider callback), and an unknown one never.
    assert!(store.complete_job(&completion("j-plain", true, now + 30)).await.unwrap());
    assert_eq!(charge_state(&store, "pkg", "j-plain").await, Some(ChargeState::Committed));
    assert!(!store.complete_job(&completion("j-unknown", true, now + 30)).await.unwrap());
}

/// Housekeeping's reaper leaves the reservations of unfinished jobs alone however old they are, and
/// still releases those of sync calls that died with their process.
pub async fn reap_skips_running_jobs(store: Store) {
    store.insert_package(&package("pkg", APP_A, SVC, 10, None, 1)).await.unwrap();
    store
        .submit_job(&reservation("job-pending", APP_A, SVC, 1, 1_000), &new_job(1_000))
        .await
        .unwrap();
    store
        .submit_job(&reservation("job-waiting", APP_A, SVC, 1, 1_000), &new_job(1_000))
        .await
        .unwrap();
    store.claim_jobs(1_000, 30_000, 10, "w").await.unwrap();
    assert!(store
        .reschedule_job(&reschedule("job-waiting", "w", JobState::Waiting, 3_601_000))
        .await
        .unwrap());
    assert_eq!(
        store.reserve(&reservation("sync-dead", APP_A, SVC, 1, 1_000)).await.unwrap(),
        reserved("pkg")
    );
    assert_eq!(units_left(&store, "pkg").await, 7);

    assert_eq!(store.reap_reservations(1_000_000, 1_000_000).await.unwrap(), 1);
    assert_eq!(units_left(&store, "pkg").await, 8);
    assert_eq!(charge_state(&store, "pkg", "sync-dead").await, Some(ChargeState::Released));
    assert_eq!(charge_state(&store, "pkg", "job-pending").await, Some(ChargeState::Reserved));
    assert_eq!(charge_state(&store, "pkg", "job-waiting").await, Some(ChargeState::Reserved));

    // Once the job finishes it settles its own units; the reaper still finds nothing to do.
    assert!(store.complete_job(&completion("job-pending", true, 2_000_000)).await.unwrap());
    assert_eq!(store.reap_reservations(3_000_000, 3_000_000).await.unwrap(), 0);
    assert_eq!(charge_state(&store, "pkg", "job-pending").await, Some(ChargeState::Committed));
    assert_eq!(units_left(&store, "pkg").await, 8);
}

/// `list_jobs` filters by app and state, newest first, with a keyset cursor; `sweep_jobs` deletes
/// only jobs that finished before the given time.
pub async fn jobs_sweep(store: Store) {
    store.insert_package(&package("pkg-a", APP_A, SVC, 10, None, 1)).await.unwrap();
    store.insert_package(&package("pkg-b", APP_B, SVC, 10, None, 1)).await.unwrap();
    for (request_id, appid, at) in [
        ("a1", APP_A, 1_000),
        ("a2", APP_A, 2_000),
        ("a3", APP_A, 3_000),
        ("b1", APP_B, 2_500),
    ] {
        store
            .submit_job(&reservation(request_id, appid, SVC, 1, at), &new_job(at))
            .await
            .unwrap();
    }
    assert!(store.complete_job(&completion("a1", true, 5_000)).await.unwrap());
    assert!(store.complete_job(&completion("a2", false, 9_000)).await.unwrap());

    let ids = |jobs: Vec<souk_core::store::jobs::Job>| jobs.into_iter().map(|j| j.request_id).collect::<Vec<_>>();
    let all = JobFilter {
        limit: 10,
        ..JobFilter::default()
    };
    assert_eq!(ids(store.list_jobs(&all).await.unwrap()), ["a3", "b1", "a2", "a1"]);
    let app_a = JobFilter {
        appid: Some(APP_A.to_owned()),
        limit: 2,
        ..JobFilter::default()
    };
    let first = store.list_jobs(&app_a).await.unwrap();
    assert_eq!(ids(first.clone()), ["a3", "a2"]);
    let last = first.last().unwrap();
    let next = JobFilter {
        before: Some((last.created_at_ms, last.request_id.clone())),
        ..app_a.clone()
    };
    assert_eq!(ids(store.list_jobs(&next).await.unwrap()), ["a1"]);
    let pending = JobFilter {
        state: Some(JobState::Pending),
        limit: 10,
        ..JobFilter::default()
    };
    assert_eq!(ids(store.list_jobs(&pending).await.unwrap()), ["a3", "b1"]);

    assert_eq!(store.sweep_jobs(6_000).await.unwrap(), 1);
    assert_eq!(store.get_job("a1").await.unwrap(), None);
    assert!(store.get_job("a2").await.unwrap().is_some());
    assert_eq!(store.sweep_jobs(i64::MAX).await.unwrap(), 1, "unfinished jobs are never swept");
    assert_eq!(ids(store.list_jobs(&all).await.unwrap()), ["a3", "b1"]);
    // The ledger is not touched.
    assert_eq!(store.ledger("pkg-a").await.unwrap().len(), 3);
}

/// Callers that go away mid-submission (a client hanging up drops its request's future at any
/// await) leave the store whole and usable: every job kept has its charge and the units agree, and
/// the next submission works. Cancelled at every step of the way, over and over.
pub async fn jobs_submit_survives_cancelled_callers(store: Store) {
    let now = 10_000;
    let units = 100_000;
    store.insert_package(&package("pkg", APP_A, SVC, units, None, 1)).await.unwrap();
    for i in 0..600_u32 {
        let request = reservation(&format!("c{i:03}"), APP_A, SVC, 1, now);
        let job = new_job(now);
        let mut submission = Box::pin(store.submit_job(&request, &job));
        // Poll a varying number of times, giving the driver time in between, then drop.
        for _ in 0..(i % 24) {
            let polled = std::future::poll_fn(|cx| std::task::Poll::Ready(submission.as_mut().poll(cx))).await;
            if polled.is_ready() {
                break;
            }
            tokio::task::yield_now().await;
            if i % 3 == 0 {
                std::thread::yield_now();
            }
        }
        drop(submission);
    }
    let request = reservation("after", APP_A, SVC, 1, now);
    assert_eq!(
        store.submit_job(&request, &new_job(now)).await.unwrap(),
        reserved("pkg"),
        "a submission after the cancelled ones works"
    );
    // Dropped transactions roll back in the background: wait for the ledger to settle down.
    let mut ledger = store.ledger("pkg").await.unwrap();
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let again = store.ledger("pkg").await.unwrap();
        if again.len() == ledger.len() {
            break;
        }
        ledger = again;
    }
    let charged: i64 = ledger.iter().map(|entry| entry.units).sum();
    assert_eq!(units_left(&store, "pkg").await, units - charged, "units left agree with the ledger");
    for entry in &ledger {
        assert!(
            store.get_job(&entry.request_id).await.unwrap().is_some(),
            "charge {} has its job",
            entry.request_id
        );
    }
}

/// A submission whose job cannot be stored (a job with its request id exists, its charge cancelled)
/// keeps nothing: the error, the units back, no charge, the `client_msg_id` free again; the job
/// already there is untouched. Submissions queued with it are not disturbed.
pub async fn jobs_submit_conflict_keeps_nothing(store: Store) {
    let now = 20_000;
    store.insert_package(&package("pkg", APP_A, SVC, 20, None, 1)).await.unwrap();
    let first = reservation("j-twice", APP_A, SVC, 2, now);
    assert_eq!(store.submit_job(&first, &new_job(now)).await.unwrap(), reserved("pkg"));
    assert!(store.cancel_reservation("j-twice").await.unwrap());
    assert_eq!(units_left(&store, "pkg").await, 20);

    let mut again_job = new_job(now + 1);
    again_job.body = r#"{"q":"again"}"#.to_owned();
    again_job.answer = Some("accepted again".to_owned());
    let again = with_msg_id(reservation("j-twice", APP_A, SVC, 3, now + 1), "m-twice");
    let others: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let request = reservation(&format!("j-other-{i}"), APP_A, SVC, 1, now + 1);
                store.submit_job(&request, &new_job(now + 1)).await
            })
        })
        .collect();
    let refused = store.submit_job(&again, &again_job).await;
    assert!(
        matches!(refused, Err(souk_core::store::StoreError::AlreadyExists)),
        "a second job with the same request id is refused, got {refused:?}"
    );
    for other in others {
        assert_eq!(other.await.unwrap().unwrap(), reserved("pkg"), "the other submissions are kept");
    }
    assert_eq!(units_left(&store, "pkg").await, 20 - 8, "only the other submissions hold units");
    assert_eq!(charge_state(&store, "pkg", "j-twice").await, None, "no charge is kept");
    assert_eq!(
        store.find_idempotent(APP_A, "m-twice").await.unwrap(),
        None,
        "the claim is forgotten"
    );
    let kept = store.get_job("j-twice").await.unwrap().expect("the first job stays");
    assert_eq!(kept.body, new_job(now).body);
    assert_eq!(kept.created_at_ms, now);
}

/// Submissions and completions racing with sync reservations and settlements on one package stay
/// exact: every unit is either left, or held by exactly one committed or reserved charge, and each
/// job's state agrees with its charge.
pub async fn jobs_and_sync_calls_interleave_exactly(store: Store) {
    let now = 30_000;
    let units = 400;
    store.insert_package(&package("pkg", APP_A, SVC, units, None, 1)).await.unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|task| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..20 {
                    let request_id = format!("t{task:02}-{i:02}");
                    let succeeded = (task + i) % 3 != 0;
                    if i % 2 == 0 {
                        let request = reservation(&request_id, APP_A, SVC, 1, now);
                        assert_eq!(store.submit_job(&request, &new_job(now)).await.unwrap(), reserved("pkg"));
                        assert!(store.complete_job(&completion(&request_id, succeeded, now + 1)).await.unwrap());
                    } else {
                        let request = reservation(&request_id, APP_A, SVC, 1, now);
                        assert_eq!(store.reserve(&request).await.unwrap(), reserved("pkg"));
                        let settlement = souk_core::model::Settlement {
                            request_id,
                            commit: succeeded,
                            now_ms: now + 1,
                            answer: None,
                        };
                        assert!(store.settle(&settlement).await.unwrap());
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let ledger = store.ledger("pkg").await.unwrap();
    assert_eq!(ledger.len(), 16 * 20, "one entry a call");
    let mut spent = 0;
    for entry in &ledger {
        let job = store.get_job(&entry.request_id).await.unwrap();
        match entry.state {
            ChargeState::Committed => spent += entry.units,
            ChargeState::Released => {}
            other => panic!("{} is still {other:?}", entry.request_id),
        }
        if let Some(job) = job {
            let expected = if entry.state == ChargeState::Committed {
                JobState::Succeeded
            } else {
                JobState::Failed
            };
            assert_eq!(job.state, expected, "job {} agrees with its charge", entry.request_id);
        }
    }
    let expected_spent = (0..16)
        .flat_map(|task| (0..20).map(move |i| (task + i) % 3 != 0))
        .filter(|&ok| ok)
        .count();
    assert_eq!(spent, i64::try_from(expected_spent).unwrap());
    assert_eq!(units_left(&store, "pkg").await, units - spent, "units left agree with the ledger");
}
