//! `Souk::http_request` end to end on the real backends, with a recording `CloudTransport` in place
//! of the network: cloud apps from the store, every check before any traffic, the signed context
//! parameters, `user_nick` after consent, caching with single-flight, expiry on a `ManualClock`.
//! (The HTTP doors and a real upstream are `souk-server`'s end-to-end tests.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};
use souk_core::calllog::CallLogWriter;
use souk_core::clients::ClientCaller;
use souk_core::clock::ManualClock;
use souk_core::cloud::context::mix_nick;
use souk_core::cloud::{CloudCaller, CloudTransport, UpstreamReply, UpstreamRequest};
use souk_core::provider::{ProviderReply, ProviderRequest, ProviderTransport};
use souk_core::ratelimit::LocalRateLimiter;
use souk_core::store::clients::{ClientSession, EndUser};
use souk_core::store::DurableStore;
use souk_core::Souk;
use souk_store::conformance;
use souk_types::admin::{CloudAppPatch, NewApp, NewCloudApp};
use souk_types::cloud::{parse_request, CloudRequest};
use souk_types::sign::{self, SignMethod};
use souk_types::Code;

const SECRET_KEY: &[u8] = b"test-secret-key-0123456789abcdef";
const NOW_MS: i64 = 1_700_000_000_000;

struct NoProviders;

#[async_trait]
impl ProviderTransport for NoProviders {
    async fn post(&self, _request: ProviderRequest) -> ProviderReply {
        ProviderReply::Failed("no providers in this test".into())
    }
}

/// Counts calls, keeps the last request, answers `reply` after `delay`.
struct Recording {
    calls: AtomicUsize,
    last: Mutex<Option<UpstreamRequest>>,
    reply: Value,
    delay: Duration,
}

impl Recording {
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn last(&self) -> UpstreamRequest {
        self.last.lock().unwrap().clone().expect("a request was sent")
    }
}

#[async_trait]
impl CloudTransport for Recording {
    async fn send(&self, request: UpstreamRequest) -> UpstreamReply {
        self.calls.fetch_add(1, Ordering::SeqCst);
        *self.last.lock().unwrap() = Some(request);
        tokio::time::sleep(self.delay).await;
        UpstreamReply::Answered {
            status: 200,
            body: self.reply.to_string().into_bytes(),
        }
    }
}

struct Rig {
    souk: Arc<Souk>,
    clock: Arc<ManualClock>,
    transport: Arc<Recording>,
}

fn rig(store: Arc<dyn DurableStore>, secret_key: bool) -> Rig {
    let clock = Arc::new(ManualClock::new(NOW_MS));
    let (call_log, _task) = CallLogWriter::start(store.clone());
    let transport = Arc::new(Recording {
        calls: AtomicUsize::new(0),
        last: Mutex::new(None),
        reply: json!({"success": true, "data": {"hello": "world"}, "extra": "dropped"}),
        delay: Duration::from_millis(50),
    });
    let mut souk = Souk::new(
        store,
        clock.clone(),
        Arc::new(NoProviders),
        Arc::new(LocalRateLimiter::new()),
        call_log,
    )
    .with_cloud_transport(transport.clone());
    if secret_key {
        souk = souk.with_secret_key(SECRET_KEY);
    }
    Rig {
        souk: Arc::new(souk),
        clock,
        transport,
    }
}

async fn new_app(souk: &Souk) -> String {
    let new = NewApp {
        name: "app".into(),
        ..NewApp::default()
    };
    souk.create_app(new).await.unwrap().0.appid
}

fn request(cloud_app_id: &str, domain: &str, extra: Value) -> CloudRequest {
    let mut request = json!({
        "path": "/api/hello",
        "params": {"name": "hanruo", "open_id": "forged"},
        "body": {"k": "v"},
        "exts": {"cloudAppId": cloud_app_id, "domain": domain}
    });
    for (key, value) in extra.as_object().unwrap() {
        request[key] = value.clone();
    }
    parse_request(request.to_string().as_bytes()).unwrap()
}

async fn refused(rig: &Rig, caller: &CloudCaller, request: &CloudRequest) -> Code {
    rig.souk
        .http_request(caller, request, "rid")
        .await
        .expect_err("should be refused")
        .code
}

async fn checks_come_before_any_traffic(store: Arc<dyn DurableStore>) {
    let rig = rig(store, true);
    let (app_a, app_b) = (new_app(&rig.souk).await, new_app(&rig.souk).await);
    let mut new = NewCloudApp {
        appid: app_a.clone(),
        whitelist: vec!["https://a.example".into()],
        ..NewCloudApp::default()
    };
    let of_a = rig.souk.create_cloud_app(new.clone()).await.unwrap().cloud_app_id;
    new.appid = app_b.clone();
    let of_b = rig.souk.create_cloud_app(new).await.unwrap().cloud_app_id;
    let a = CloudCaller::for_app(&app_a);

    assert_eq!(
        refused(&rig, &a, &request("1234", "https://a.example", json!({}))).await,
        Code::CloudAppNotFound
    );
    assert_eq!(
        refused(&rig, &a, &request(&of_b, "https://a.example", json!({}))).await,
        Code::CloudAppNotFound,
        "another app's cloud app is unknown to this one"
    );
    assert_eq!(
        refused(&rig, &a, &request(&of_a, "https://b.example", json!({}))).await,
        Code::CloudOriginNotWhitelisted
    );
    assert_eq!(
        refused(&rig, &a, &request(&of_a, "http://a.example", json!({}))).await,
        Code::CloudOriginNotWhitelisted,
        "the scheme is part of the origin"
    );
    let per_user = json!({"exts": {"cloudAppId": of_a, "domain": "https://a.example", "cacheType": 0}});
    assert_eq!(
        refused(&rig, &a, &request(&of_a, "", per_user)).await,
        Code::CloudInvalidRequest,
        "a server call has no user to key cacheType 0 on"
    );
    let patch = CloudAppPatch {
        disabled: Some(true),
        ..CloudAppPatch::default()
    };
    rig.souk.update_cloud_app(&of_a, patch).await.unwrap();
    assert_eq!(
        refused(&rig, &a, &request(&of_a, "https://a.example", json!({}))).await,
        Code::CloudAppDisabled,
        "disabling takes effect at once"
    );
    assert_eq!(rig.transport.calls(), 0, "nothing reached the network");

    let patch = CloudAppPatch {
        disabled: Some(false),
        whitelist: Some(vec!["HTTPS://B.example:443/".into()]),
        ..CloudAppPatch::default()
    };
    rig.souk.update_cloud_app(&of_a, patch).await.unwrap();
    let outcome = rig
        .souk
        .http_request(&a, &request(&of_a, "https://b.example", json!({})), "rid")
        .await
        .unwrap();
    assert_eq!(outcome.envelope.data, json!({"hello": "world"}));
    assert!(!outcome.cache_hit);
    assert_eq!(rig.transport.calls(), 1);

    let without_transport = Souk::new(
        rig.souk.store().clone(),
        rig.clock.clone(),
        Arc::new(NoProviders),
        Arc::new(LocalRateLimiter::new()),
        rig.souk.call_log().clone(),
    );
    let failure = without_transport
        .http_request(&a, &request(&of_a, "https://b.example", json!({})), "rid")
        .await
        .unwrap_err();
    assert_eq!(failure.code, Code::SystemError);
}

/// Decodes a query strictly (percent-decoding only; souk never sends `+`).
fn query_of(url: &str) -> Vec<(String, String)> {
    let query = url.split_once('?').unwrap().1;
    form_urlencoded::parse(query.as_bytes()).into_owned().collect()
}

fn value<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    let mut found = params.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let first = found.next();
    assert!(found.next().is_none(), "{name} is sent at most once");
    first
}

async fn client_calls_carry_the_user_and_are_cached_once(store: Arc<dyn DurableStore>) {
    let rig = rig(store.clone(), true);
    let appid = new_app(&rig.souk).await;
    let new = NewCloudApp {
        appid: appid.clone(),
        whitelist: vec!["https://a.example".into()],
        env: Some("test".into()),
        sign_method: Some("hmac-sha256".into()),
    };
    let cloud_app = rig.souk.create_cloud_app(new).await.unwrap();
    let user = EndUser {
        appid: appid.clone(),
        user: "u1".into(),
        openid: "o-ann".into(),
        nick: Some("Ann".into()),
        scopes: Vec::new(),
        created_at_ms: NOW_MS,
    };
    store.get_or_create_user(&user).await.unwrap();
    let client = ClientCaller {
        app: rig.souk.find_app(&appid).await.unwrap().unwrap(),
        session: Arc::new(ClientSession {
            session_hash: "h".into(),
            appid: appid.clone(),
            openid: "o-ann".into(),
            user: "u1".into(),
            plugin_appid: None,
            created_at_ms: NOW_MS,
            expires_at_ms: NOW_MS + 7_200_000,
        }),
    };

    let caller = rig.souk.cloud_caller_for_client(&client).await.unwrap();
    assert_eq!(caller.user_nick, None, "no nick before scope.userInfo");
    rig.souk.authorize_scopes(&client, &["scope.userInfo".to_owned()]).await.unwrap();
    let caller = rig.souk.cloud_caller_for_client(&client).await.unwrap();
    assert_eq!(caller.user_nick.as_deref(), Some("Ann"));

    let plain = request(&cloud_app.cloud_app_id, "HTTPS://A.example:443", json!({}));
    let outcome = rig.souk.http_request(&caller, &plain, "rid-42").await.unwrap();
    assert_eq!(outcome.envelope.data, json!({"hello": "world"}));
    let sent = rig.transport.last();
    assert!(sent.url.starts_with("https://a.example/api/hello?"), "{}", sent.url);
    assert_eq!(sent.body.as_deref(), Some(&br#"{"k":"v"}"#[..]));
    let params = query_of(&sent.url);
    assert_eq!(value(&params, "open_id"), Some("o-ann"), "souk's open_id, never the caller's");
    assert_eq!(value(&params, "mini_app_id"), Some(appid.as_str()));
    assert_eq!(value(&params, "app_key"), Some(cloud_app.app_key.as_str()));
    assert_eq!(value(&params, "env"), Some("test"));
    assert_eq!(value(&params, "user_nick"), Some("Ann"));
    assert_eq!(value(&params, "request_id"), Some("rid-42"));
    assert_eq!(value(&params, "sign_method"), Some("hmac-sha256"));
    assert_eq!(value(&params, "name"), Some("hanruo"));
    let nick = mix_nick(SECRET_KEY, &appid, "o-ann");
    assert_eq!(value(&params, "mix_nick"), Some(nick.as_str()));
    assert_eq!(
        sign::parse_timestamp(value(&params, "timestamp").unwrap()),
        Some(NOW_MS / 1000 * 1000)
    );
    let given = value(&params, "sign").unwrap();
    assert!(sign::verify(
        SignMethod::HmacSha256,
        &cloud_app.secret,
        &params,
        sent.body.as_deref(),
        given
    ));

    // cacheType 1 for 60 s: 50 identical calls at once make one upstream call.
    let before = rig.transport.calls();
    let cached = request(
        &cloud_app.cloud_app_id,
        "",
        json!({"exts": {"cloudAppId": cloud_app.cloud_app_id, "domain": "https://a.example", "cacheType": 1, "cacheTime": 60}}),
    );
    // Polled together in one task: every call passes its (cached) lookups and reaches the flight
    // before the first upstream answer can land.
    let outcomes = futures::future::join_all((0..50).map(|idx| {
        let (souk, caller, cached) = (&rig.souk, &caller, &cached);
        async move { souk.http_request(caller, cached, &format!("rid-{idx}")).await }
    }))
    .await;
    assert_eq!(rig.transport.calls(), before + 1, "one upstream call for 50 identical ones");
    let hits = outcomes.iter().filter(|outcome| outcome.as_ref().unwrap().cache_hit).count();
    assert_eq!(hits, 49, "all but the leader were served without an upstream call");
    let again = rig.souk.http_request(&caller, &cached, "rid").await.unwrap();
    assert!(again.cache_hit);
    assert_eq!(again.envelope.data, json!({"hello": "world"}));
    rig.clock.advance_ms(60_000);
    let expired = rig.souk.http_request(&caller, &cached, "rid").await.unwrap();
    assert!(!expired.cache_hit, "an entry is served for cacheTime only");
    assert_eq!(rig.transport.calls(), before + 2);

    // Without a secret key, souk cannot name the user: it refuses rather than send no mix_nick.
    let keyless = self::rig(store, false);
    let failure = keyless.souk.http_request(&caller, &plain, "rid").await.unwrap_err();
    assert_eq!(failure.code, Code::SystemError);
    assert_eq!(keyless.transport.calls(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_checks_come_before_any_traffic() {
    conformance::with_sqlite(checks_come_before_any_traffic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_checks_come_before_any_traffic() {
    conformance::with_postgres(checks_come_before_any_traffic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_client_calls_carry_the_user_and_are_cached_once() {
    conformance::with_sqlite(client_calls_carry_the_user_and_are_cached_once).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_client_calls_carry_the_user_and_are_cached_once() {
    conformance::with_postgres(client_calls_carry_the_user_and_are_cached_once).await;
}
