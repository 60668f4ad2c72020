//! Conformance cases: customer-service messages (order, reply rules, typing, the push outbox) and
//! reported payments.

use std::sync::Arc;

use souk_core::store::messages::{Direction, NewMessage, PushAttempt, PushState, ReplyRules, SendOutcome, TypingOutcome};
use souk_core::store::payments::{PaymentInsert, PaymentRecord};

use super::builders::{APP_A, APP_B};
use super::Store;

const T0: i64 = 1_700_000_000_000;
const RULES: ReplyRules = ReplyRules {
    window_ms: 48 * 3_600_000,
    max_replies: 5,
};

fn message(msg_id: i64, appid: &str, openid: &str, at_ms: i64, push: bool) -> NewMessage {
    NewMessage {
        msg_id,
        appid: appid.to_owned(),
        openid: openid.to_owned(),
        body: format!(r#"{{"msgtype":"text","text":{{"content":"m{msg_id}"}}}}"#),
        created_at_ms: at_ms,
        push,
    }
}

fn sent(outcome: SendOutcome) -> souk_core::store::messages::StoredMessage {
    match outcome {
        SendOutcome::Sent(message) => message,
        other => panic!("expected Sent, got {other:?}"),
    }
}

/// Messages are numbered per conversation from 1 in order, both directions; listing pages after a
/// number; a user's message is pending its push when asked, an app's never.
pub async fn messages_append_and_list(store: Store) {
    let first = store.append_user_message(&message(11, APP_A, "o1", T0, true)).await.unwrap();
    assert_eq!(
        (first.seq, first.direction, first.push_state),
        (1, Direction::In, PushState::Pending)
    );
    assert_eq!(first.push_due_at_ms, Some(T0));
    let reply = sent(
        store
            .append_app_message(&message(12, APP_A, "o1", T0 + 1, false), RULES)
            .await
            .unwrap(),
    );
    assert_eq!((reply.seq, reply.direction, reply.push_state), (2, Direction::Out, PushState::None));
    let other = store.append_user_message(&message(13, APP_A, "o2", T0, false)).await.unwrap();
    assert_eq!((other.seq, other.push_state), (1, PushState::None), "conversations count apart");
    let other_app = store.append_user_message(&message(14, APP_B, "o1", T0, false)).await.unwrap();
    assert_eq!(other_app.seq, 1);

    let all = store.list_messages(APP_A, "o1", 0, 10).await.unwrap();
    assert_eq!(all, vec![first.clone(), reply.clone()]);
    assert_eq!(store.list_messages(APP_A, "o1", 1, 10).await.unwrap(), vec![reply.clone()]);
    assert_eq!(store.list_messages(APP_A, "o1", 0, 1).await.unwrap(), vec![first.clone()]);
    assert!(store.list_messages(APP_A, "nobody", 0, 10).await.unwrap().is_empty());
    assert_eq!(store.get_message(12).await.unwrap(), Some(reply));
    assert_eq!(store.get_message(99).await.unwrap(), None);
}

/// No reply before the user writes; 5 replies per user message, counted again from each one; none
/// once the user's last message is older than the window.
pub async fn messages_reply_rules(store: Store) {
    assert_eq!(
        store.append_app_message(&message(1, APP_A, "o1", T0, false), RULES).await.unwrap(),
        SendOutcome::NeverWrote
    );
    store.append_user_message(&message(2, APP_A, "o1", T0, false)).await.unwrap();
    for n in 0..5 {
        sent(
            store
                .append_app_message(&message(10 + n, APP_A, "o1", T0 + n, false), RULES)
                .await
                .unwrap(),
        );
    }
    assert_eq!(
        store
            .append_app_message(&message(20, APP_A, "o1", T0 + 10, false), RULES)
            .await
            .unwrap(),
        SendOutcome::ReplyLimit
    );
    assert_eq!(
        store.list_messages(APP_A, "o1", 0, 100).await.unwrap().len(),
        6,
        "refused replies are not kept"
    );
    let again = store.append_user_message(&message(21, APP_A, "o1", T0 + 20, false)).await.unwrap();
    assert_eq!(again.seq, 7);
    let reply = sent(
        store
            .append_app_message(&message(22, APP_A, "o1", T0 + 20 + RULES.window_ms, false), RULES)
            .await
            .unwrap(),
    );
    assert_eq!(reply.seq, 8, "exactly 48 h is still inside the window");
    assert_eq!(
        store
            .append_app_message(&message(23, APP_A, "o1", T0 + 21 + RULES.window_ms, false), RULES)
            .await
            .unwrap(),
        SendOutcome::OutOfWindow { last_in_at_ms: T0 + 20 }
    );
}

/// However many replies race, exactly `max_replies` are kept, numbered without gaps.
pub async fn messages_reply_limit_race(store: Store) {
    store.append_user_message(&message(1, APP_A, "o1", T0, false)).await.unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|n| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.append_app_message(&message(100 + n, APP_A, "o1", T0 + 1, false), RULES).await })
        })
        .collect();
    let mut n_sent = 0;
    for task in tasks {
        if let SendOutcome::Sent(_) = task.await.unwrap().unwrap() {
            n_sent += 1;
        }
    }
    assert_eq!(n_sent, 5);
    let seqs: Vec<i64> = store
        .list_messages(APP_A, "o1", 0, 100)
        .await
        .unwrap()
        .iter()
        .map(|m| m.seq)
        .collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5, 6]);
}

/// Typing needs a recent exchange, is refused while it runs, ends by itself, when cancelled, and
/// when the app sends a message.
pub async fn messages_typing(store: Store) {
    let typing = |at: i64| (Some(at + 15_000), at, at - 30_000);
    let (until, now, since) = typing(T0);
    assert_eq!(
        store.set_typing(APP_A, "o1", until, now, since).await.unwrap(),
        TypingOutcome::NoRecentExchange,
        "never exchanged"
    );
    store.append_user_message(&message(1, APP_A, "o1", T0, false)).await.unwrap();
    assert_eq!(
        store.set_typing(APP_A, "o1", until, now, since).await.unwrap(),
        TypingOutcome::Started { until_ms: T0 + 15_000 }
    );
    let (later_until, later, later_since) = typing(T0 + 5_000);
    assert_eq!(
        store.set_typing(APP_A, "o1", later_until, later, later_since).await.unwrap(),
        TypingOutcome::AlreadyTyping { until_ms: T0 + 15_000 }
    );
    let (until, now, since) = typing(T0 + 15_000);
    assert_eq!(
        store.set_typing(APP_A, "o1", until, now, since).await.unwrap(),
        TypingOutcome::Started { until_ms: T0 + 30_000 },
        "the first typing state ran out"
    );
    assert_eq!(
        store.set_typing(APP_A, "o1", None, T0 + 16_000, 0).await.unwrap(),
        TypingOutcome::Cancelled { was_typing: true }
    );
    assert_eq!(
        store.set_typing(APP_A, "o1", None, T0 + 16_000, 0).await.unwrap(),
        TypingOutcome::Cancelled { was_typing: false }
    );
    let (until, now, since) = typing(T0 + 20_000);
    assert_eq!(
        store.set_typing(APP_A, "o1", until, now, since).await.unwrap(),
        TypingOutcome::Started { until_ms: T0 + 35_000 }
    );
    sent(
        store
            .append_app_message(&message(2, APP_A, "o1", T0 + 21_000, false), RULES)
            .await
            .unwrap(),
    );
    let (until, now, since) = typing(T0 + 22_000);
    assert_eq!(
        store.set_typing(APP_A, "o1", until, now, since).await.unwrap(),
        TypingOutcome::Started { until_ms: T0 + 37_000 },
        "a message ends typing"
    );
    let (until, now, since) = typing(T0 + 21_000 + 30_001 + 15_000);
    assert_eq!(
        store.set_typing(APP_A, "o1", until, now, since).await.unwrap(),
        TypingOutcome::NoRecentExchange,
        "the last exchange is more than 30 s old"
    );
}

/// Pending pushes are claimed when due, soonest first, with a lease and one more attempt each; a
/// retry is due again later; delivered and failed pushes are never claimed again; racing claimers
/// split the queue.
pub async fn messages_push_outbox(store: Store) {
    for n in 1..=3 {
        store.append_user_message(&message(n, APP_A, "o1", T0 + n, true)).await.unwrap();
    }
    store.append_user_message(&message(9, APP_A, "o2", T0, false)).await.unwrap();
    assert!(store.claim_message_pushes(T0, 60_000, 10).await.unwrap().is_empty(), "none due yet");
    let claimed = store.claim_message_pushes(T0 + 2, 60_000, 10).await.unwrap();
    assert_eq!(
        claimed.iter().map(|m| (m.msg_id, m.push_attempts)).collect::<Vec<_>>(),
        vec![(1, 1), (2, 1)]
    );
    assert_eq!(claimed[0].push_due_at_ms, Some(T0 + 2 + 60_000), "leased");
    let next = store.claim_message_pushes(T0 + 10, 60_000, 10).await.unwrap();
    assert_eq!(
        next.iter().map(|m| m.msg_id).collect::<Vec<_>>(),
        vec![3],
        "claimed ones are leased"
    );

    assert!(store.finish_message_push(1, &PushAttempt::Delivered).await.unwrap());
    let retry = PushAttempt::Retry {
        due_at_ms: T0 + 5_000,
        error: "HTTP 500".to_owned(),
    };
    assert!(store.finish_message_push(2, &retry).await.unwrap());
    assert!(store
        .finish_message_push(3, &PushAttempt::Failed { error: "gone".to_owned() })
        .await
        .unwrap());
    assert!(
        !store.finish_message_push(1, &PushAttempt::Delivered).await.unwrap(),
        "already delivered"
    );

    let again = store.claim_message_pushes(T0 + 5_000, 60_000, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].msg_id, again[0].push_attempts), (2, 2));
    assert_eq!(again[0].push_last_error.as_deref(), Some("HTTP 500"));
    let delivered = store.get_message(1).await.unwrap().unwrap();
    assert_eq!((delivered.push_state, delivered.push_due_at_ms), (PushState::Delivered, None));
    assert_eq!(store.get_message(3).await.unwrap().unwrap().push_state, PushState::Failed);
    assert!(store
        .claim_message_pushes(T0 + 10_000_000, 60_000, 10)
        .await
        .unwrap()
        .iter()
        .all(|m| m.msg_id == 2));

    for n in 100..140 {
        store.append_user_message(&message(n, APP_B, "o1", T0, true)).await.unwrap();
    }
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.claim_message_pushes(T0 + 1, 60_000, 15).await.unwrap() })
        })
        .collect();
    let mut ids = Vec::new();
    for task in tasks {
        ids.extend(task.await.unwrap().into_iter().map(|m| m.msg_id));
    }
    ids.sort_unstable();
    assert_eq!(ids, (100..140).collect::<Vec<_>>(), "each claimed exactly once");
}

fn payment(payment_id: &str, openid: &str, transaction_id: Option<&str>, order: Option<(&str, &str)>) -> PaymentRecord {
    PaymentRecord {
        payment_id: payment_id.to_owned(),
        appid: APP_A.to_owned(),
        openid: openid.to_owned(),
        transaction_id: transaction_id.map(str::to_owned),
        mch_id: order.map(|(mch, _)| mch.to_owned()),
        out_trade_no: order.map(|(_, no)| no.to_owned()),
        amount: Some(100),
        paid_at_ms: T0,
        created_at_ms: T0 + 1,
    }
}

/// A payment is kept once per order, by transaction id or by merchant order; a second report answers
/// the first; both lookups find it.
pub async fn payments_record_and_find(store: Store) {
    let first = payment("p1", "o1", Some("tx1"), Some(("mch", "no1")));
    assert_eq!(store.record_payment(&first).await.unwrap(), PaymentInsert::Inserted(first.clone()));
    let same_tx = payment("p2", "o2", Some("tx1"), None);
    assert_eq!(
        store.record_payment(&same_tx).await.unwrap(),
        PaymentInsert::Existing(first.clone())
    );
    let same_order = payment("p3", "o1", Some("tx9"), Some(("mch", "no1")));
    assert_eq!(
        store.record_payment(&same_order).await.unwrap(),
        PaymentInsert::Existing(first.clone())
    );
    let order_only = payment("p4", "o1", None, Some(("mch", "no2")));
    assert_eq!(
        store.record_payment(&order_only).await.unwrap(),
        PaymentInsert::Inserted(order_only.clone())
    );
    let tx_only = payment("p5", "o1", Some("tx2"), None);
    assert_eq!(
        store.record_payment(&tx_only).await.unwrap(),
        PaymentInsert::Inserted(tx_only.clone())
    );

    assert_eq!(store.find_payment_by_transaction("tx1").await.unwrap(), Some(first.clone()));
    assert_eq!(store.find_payment_by_transaction("tx9").await.unwrap(), None);
    assert_eq!(store.find_payment_by_order("mch", "no1").await.unwrap(), Some(first));
    assert_eq!(store.find_payment_by_order("mch", "no2").await.unwrap(), Some(order_only));
    assert_eq!(store.find_payment_by_order("other", "no2").await.unwrap(), None);
}

/// Racing writers of one new conversation (users and app) get distinct numbers without gaps.
pub async fn messages_numbering_race(store: Store) {
    let tasks: Vec<_> = (0..24)
        .map(|n| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                if n % 3 == 0 {
                    store
                        .append_app_message(&message(100 + n, APP_A, "o1", T0 + 1, false), RULES)
                        .await
                        .map(|_| ())
                } else {
                    store
                        .append_user_message(&message(100 + n, APP_A, "o1", T0 + 1, true))
                        .await
                        .map(|_| ())
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let messages = store.list_messages(APP_A, "o1", 0, 100).await.unwrap();
    let seqs: Vec<i64> = messages.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (1..=i64::try_from(messages.len()).unwrap()).collect::<Vec<_>>());
    assert!(
        messages.len() >= 16,
        "every user message is kept (the first ones create the conversation)"
    );
}
