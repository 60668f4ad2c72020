//! `RedisSignals` against the real Redis at `SOUK_TEST_REDIS_URL` (skipped when unset, required
//! under `CI`): two "nodes" (two domains with their own caches on one store, each with its own Redis
//! connection) hear each other's changes at once, and a subscription that breaks comes back with a
//! resync.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use souk_core::calllog::CallLogWriter;
use souk_core::clock::SystemClock;
use souk_core::provider::{ProviderReply, ProviderRequest, ProviderTransport};
use souk_core::ratelimit::LocalRateLimiter;
use souk_core::signals::{BusEvent, Signal, SignalBus};
use souk_core::store::DurableStore;
use souk_core::tokens::TokenRequest;
use souk_core::Souk;
use souk_redis::{RedisConnection, RedisSettings, RedisSignals};
use souk_types::admin::{AppPatch, NewApp};
use souk_types::Code;

mod common;

use common::{redis_server_url, switchable_proxy, FORWARD, STALL};

/// How long a signal may take to reach the other node (the bound for config changes).
const BOUND: Duration = Duration::from_secs(1);

fn settings(prefix: &str) -> RedisSettings {
    RedisSettings {
        timeout: Duration::from_secs(2),
        key_prefix: prefix.to_owned(),
        ..RedisSettings::default()
    }
}

fn fresh_prefix() -> String {
    format!("souk-test:{:016x}:", rand::random::<u64>())
}

async fn bus(url: &str, prefix: &str) -> Arc<RedisSignals> {
    let connection = RedisConnection::connect(url, settings(prefix)).await.expect("a valid URL");
    Arc::new(RedisSignals::new(connection))
}

/// The next event within `within`, or `None`.
async fn next_event(events: &mut futures::stream::BoxStream<'static, BusEvent>, within: Duration) -> Option<BusEvent> {
    tokio::time::timeout(within, events.next()).await.ok().flatten()
}

#[tokio::test]
async fn a_signal_reaches_the_other_node_but_not_its_sender() {
    let Some(url) = redis_server_url() else { return };
    let prefix = fresh_prefix();
    let (a, b) = (bus(&url, &prefix).await, bus(&url, &prefix).await);
    let mut heard_by_a = a.subscribe();
    let mut heard_by_b = b.subscribe();
    assert_eq!(next_event(&mut heard_by_a, Duration::from_secs(5)).await, Some(BusEvent::Resync));
    assert_eq!(next_event(&mut heard_by_b, Duration::from_secs(5)).await, Some(BusEvent::Resync));

    let signal = Signal::App { appid: "wx-signal".into() };
    let sent = Instant::now();
    a.publish(&signal).await;
    assert_eq!(next_event(&mut heard_by_b, BOUND).await, Some(BusEvent::Signal(signal)));
    println!("signal delivered in {:?}", sent.elapsed());
    assert_eq!(
        next_event(&mut heard_by_a, Duration::from_millis(300)).await,
        None,
        "a node hears its own signals"
    );

    // Another prefix is another cluster.
    let other = bus(&url, &fresh_prefix()).await;
    other.publish(&Signal::App { appid: "elsewhere".into() }).await;
    assert_eq!(next_event(&mut heard_by_b, Duration::from_millis(300)).await, None);
}

/// A provider transport no test here reaches.
struct NoProviders;

#[async_trait]
impl ProviderTransport for NoProviders {
    async fn post(&self, _request: ProviderRequest) -> ProviderReply {
        ProviderReply::Failed("no providers in this test".into())
    }
}

fn node(store: Arc<dyn DurableStore>, call_log: &CallLogWriter, bus: Arc<RedisSignals>) -> Arc<Souk> {
    let souk = Arc::new(
        Souk::new(
            store,
            Arc::new(SystemClock),
            Arc::new(NoProviders),
            Arc::new(LocalRateLimiter::new()),
            call_log.clone(),
        )
        .with_signals(bus),
    );
    souk.start_signal_listener().expect("a bus was given");
    souk
}

/// Polls `check` until it holds, up to [`BOUND`]; answers how long it took.
macro_rules! within_bound {
    ($what:expr, $check:expr) => {{
        let started = Instant::now();
        loop {
            if $check {
                break started.elapsed();
            }
            assert!(started.elapsed() < BOUND, "{}: not seen within {BOUND:?}", $what);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }};
}

#[tokio::test]
async fn a_force_refresh_and_a_disabled_app_are_refused_on_the_other_node_at_once() {
    let Some(url) = redis_server_url() else { return };
    souk_store::conformance::with_sqlite(move |store| async move {
        let prefix = fresh_prefix();
        let (call_log, _task) = CallLogWriter::start(store.clone());
        let a = node(store.clone(), &call_log, bus(&url, &prefix).await);
        let b = node(store.clone(), &call_log, bus(&url, &prefix).await);
        // Let both subscriptions start (their first resync) before anything is cached.
        tokio::time::sleep(Duration::from_millis(300)).await;

        let (app, secret) = a
            .create_app(NewApp {
                name: "signals".into(),
                ..NewApp::default()
            })
            .await
            .expect("app");
        let request = TokenRequest {
            grant_type: Some("client_credential".into()),
            appid: Some(app.appid.clone()),
            secret: Some(secret),
        };
        let old = a.get_stable_token(&request, false).await.expect("token").access_token;
        // B caches the token (and the app) now.
        b.authenticate(Some(&old)).await.expect("the token works on B");

        a.get_stable_token(&request, true).await.expect("force refresh");
        let delay = within_bound!("the force-refreshed token refused on B", b.authenticate(Some(&old)).await.is_err());
        println!("force refresh reached B in {delay:?}");
        let new = a.get_stable_token(&request, false).await.expect("token").access_token;
        b.authenticate(Some(&new)).await.expect("the new token works on B");

        a.update_app(
            &app.appid,
            AppPatch {
                disabled: Some(true),
                ..AppPatch::default()
            },
        )
        .await
        .expect("disable");
        let delay = within_bound!(
            "the disabled app refused on B",
            b.authenticate(Some(&new))
                .await
                .is_err_and(|failure| failure.code != Code::SystemError)
        );
        println!("the disabled app reached B in {delay:?}");
    })
    .await;
}

#[tokio::test]
async fn a_subscription_that_goes_silent_comes_back_with_a_resync() {
    let Some(url) = redis_server_url() else { return };
    let prefix = fresh_prefix();
    let (proxy, mode) = switchable_proxy(&url).await;
    mode.store(FORWARD, std::sync::atomic::Ordering::SeqCst);
    let listener = bus(&format!("redis://{proxy}/"), &prefix).await;
    let sender = bus(&url, &prefix).await;
    let mut events = listener.subscribe();
    assert_eq!(next_event(&mut events, Duration::from_secs(5)).await, Some(BusEvent::Resync));

    // The path goes silent towards Redis (the proxy still hands Redis's bytes back): the heartbeat's
    // ping goes unanswered and the subscription starts over, which cannot succeed while the path
    // stays silent.
    mode.store(STALL, std::sync::atomic::Ordering::SeqCst);
    sender
        .publish(&Signal::App {
            appid: "maybe lost".into(),
        })
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    mode.store(FORWARD, std::sync::atomic::Ordering::SeqCst);
    let started = Instant::now();
    loop {
        match next_event(&mut events, Duration::from_secs(10)).await {
            Some(BusEvent::Resync) => break,
            Some(BusEvent::Signal(Signal::App { appid })) if appid == "maybe lost" => {}
            other => panic!("expected a resync once the path came back, got {other:?}"),
        }
    }
    println!("resubscribed {:?} after the path came back", started.elapsed());

    let signal = Signal::Service {
        service_id: "after".into(),
    };
    sender.publish(&signal).await;
    assert_eq!(next_event(&mut events, BOUND).await, Some(BusEvent::Signal(signal)));
}
