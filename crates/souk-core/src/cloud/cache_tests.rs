//! Tests of cache keys (crafted collisions, who shares an entry by type) and the in-process cache.

use serde_json::{json, Value};
use souk_types::cloud::parse_request;
use souk_types::sign::SignMethod;

use super::*;

fn cloud_app(appid: &str, cloud_app_id: &str) -> CloudApp {
    CloudApp {
        cloud_app_id: cloud_app_id.into(),
        appid: appid.into(),
        app_key: "12345678".into(),
        secret: "s".into(),
        env: "online".into(),
        whitelist: vec!["https://a.example".into()],
        sign_method: SignMethod::Md5,
        disabled: false,
        created_at_ms: 0,
    }
}

fn user(appid: &str, openid: &str) -> CloudCaller {
    CloudCaller {
        appid: appid.into(),
        openid: Some(openid.into()),
        user_nick: None,
    }
}

/// A request: `fields` over a default POST to `/a` of `https://a.example`.
fn request(fields: Value) -> CloudRequest {
    let mut request = json!({"path": "/a", "exts": {"cloudAppId": "1", "domain": "https://a.example"}});
    for (key, value) in fields.as_object().unwrap() {
        request[key] = value.clone();
    }
    parse_request(request.to_string().as_bytes()).unwrap()
}

fn key(cache_type: CacheType, app: (&str, &str), caller: &CloudCaller, fields: Value) -> [u8; 32] {
    cache_key(cache_type, &cloud_app(app.0, app.1), caller, &request(fields))
}

#[test]
fn crafted_requests_do_not_collide() {
    let ann = user("wxa", "o-ann");
    let app = ("wxa", "1");
    let all_types = [CacheType::AppUser, CacheType::App, CacheType::User, CacheType::Global];
    let pairs = [
        // A query folded into the path (refused by the parser, so percent-encoded here) is not params.
        (json!({"path": "/a", "params": {"b": "c"}}), json!({"path": "/a%3Fb=c"})),
        // Moving a character between name and value, or between two parameters.
        (json!({"params": {"ab": "c"}}), json!({"params": {"a": "bc"}})),
        (json!({"params": {"a": "b", "c": "d"}}), json!({"params": {"a": "bcd"}})),
        (json!({"params": {"a": "b&c=d"}}), json!({"params": {"a": "b", "c": "d"}})),
        // Moving bytes between the path and the body, or the body and a parameter.
        (json!({"path": "/a", "body": "x"}), json!({"path": "/a\"x\""})),
        (json!({"params": {"a": "b"}}), json!({"body": {"a": "b"}})),
        (json!({"method": "GET"}), json!({"method": "POST"})),
        (json!({"method": "POST"}), json!({"method": "POST", "body": {}})),
        (
            json!({"exts": {"cloudAppId": "1", "domain": "https://a.example"}}),
            json!({"exts": {"cloudAppId": "1", "domain": "https://a.example:8443"}}),
        ),
    ];
    for cache_type in all_types {
        for (left, right) in &pairs {
            assert_ne!(
                key(cache_type, app, &ann, left.clone()),
                key(cache_type, app, &ann, right.clone()),
                "{cache_type:?}: {left} vs {right}"
            );
        }
    }
}

#[test]
fn the_same_request_has_the_same_key() {
    let ann = user("wxa", "o-ann");
    let app = ("wxa", "1");
    let a = key(
        CacheType::App,
        app,
        &ann,
        json!({"params": {"b": "2", "a": "1"}, "headers": {"X": "1"}}),
    );
    let b = key(
        CacheType::App,
        app,
        &ann,
        json!({"params": {"a": 1, "b": 2}, "exts": {"cloudAppId": "1", "domain": "HTTPS://A.example/", "timeout": 9000}}),
    );
    assert_eq!(
        a, b,
        "params sorted, numbers as text, the origin normalised, timeout and headers not in the key"
    );
    // Context names are dropped before the key, as before the call: they cannot split or merge entries.
    let forged = key(
        CacheType::App,
        app,
        &ann,
        json!({"params": {"a": "1", "b": "2", "open_id": "x", "sign": "y"}}),
    );
    assert_eq!(a, forged);
}

#[test]
fn sharers_follow_the_cache_type() {
    let ann_a = user("wxa", "o-ann");
    let bob_a = user("wxa", "o-bob");
    let ann_b = user("wxb", "o-ann");
    let (app_a, app_a2, app_b) = (("wxa", "1"), ("wxa", "2"), ("wxb", "3"));
    let same =
        |t, x: (&str, &str), cx: &CloudCaller, y: (&str, &str), cy: &CloudCaller| key(t, x, cx, json!({})) == key(t, y, cy, json!({}));

    // 0: same app (and cloud app) and same user.
    assert!(same(CacheType::AppUser, app_a, &ann_a, app_a, &ann_a));
    assert!(!same(CacheType::AppUser, app_a, &ann_a, app_a, &bob_a));
    assert!(!same(CacheType::AppUser, app_a, &ann_a, app_b, &ann_b));
    assert!(!same(CacheType::AppUser, app_a, &ann_a, app_a2, &ann_a));
    // 1: same app, any user.
    assert!(same(CacheType::App, app_a, &ann_a, app_a, &bob_a));
    assert!(!same(CacheType::App, app_a, &ann_a, app_b, &ann_b));
    // 2: same user, any app.
    assert!(same(CacheType::User, app_a, &ann_a, app_b, &ann_b));
    assert!(!same(CacheType::User, app_a, &ann_a, app_a, &bob_a));
    // 3: everyone.
    assert!(same(CacheType::Global, app_a, &ann_a, app_b, &bob_a));
    // Types never share entries with each other.
    assert_ne!(
        key(CacheType::App, app_a, &ann_a, json!({})),
        key(CacheType::Global, app_a, &ann_a, json!({}))
    );
    assert_ne!(
        key(CacheType::AppUser, app_a, &ann_a, json!({})),
        key(CacheType::User, app_a, &ann_a, json!({}))
    );
    // An app id cannot pose as an openid or the other way round.
    let crafted = user("o-ann", "wxa");
    assert_ne!(
        key(CacheType::AppUser, app_a, &ann_a, json!({})),
        key(CacheType::AppUser, ("o-ann", "1"), &crafted, json!({}))
    );
    // No user is not the empty user.
    let nobody = CloudCaller::for_app("wxa");
    assert_ne!(
        key(CacheType::User, app_a, &nobody, json!({})),
        key(CacheType::User, app_a, &user("wxa", ""), json!({}))
    );
}

fn envelope(data: Value) -> CloudEnvelope {
    CloudEnvelope {
        success: true,
        data,
        error_code: None,
        error_message: None,
    }
}

#[tokio::test]
async fn local_cache_expires_and_stays_bounded() {
    let cache = LocalResponseCache::new(10, 1_000_000);
    let entry = |expires_at_ms| CachedEnvelope {
        envelope: envelope(json!({"a": 1})),
        expires_at_ms,
    };
    cache.put([1; 32], entry(1_000), 0).await;
    assert_eq!(cache.get(&[1; 32], 999).await.unwrap().envelope.data, json!({"a": 1}));
    assert!(cache.get(&[1; 32], 1_000).await.is_none(), "expired at expires_at_ms");
    assert!(cache.is_empty(), "an expired entry read is evicted");
    cache.put([1; 32], entry(1_000), 1_000).await;
    assert!(cache.is_empty(), "an entry already expired when put is not kept");

    for idx in 0..25u8 {
        cache.put([idx; 32], entry(10_000 + i64::from(idx)), 0).await;
        assert!(cache.len() <= 10);
    }
    assert!(cache.get(&[24; 32], 0).await.is_some(), "the latest-expiring entries are kept");
    assert!(cache.get(&[0; 32], 0).await.is_none(), "the soonest-expiring were evicted");

    let small = LocalResponseCache::new(1_000, 8_000);
    small
        .put(
            [1; 32],
            CachedEnvelope {
                envelope: envelope(json!("x".repeat(2_000))),
                expires_at_ms: 10,
            },
            0,
        )
        .await;
    assert!(small.is_empty(), "an entry over an eighth of the byte bound is not kept");
    for idx in 0..50u8 {
        small
            .put(
                [idx; 32],
                CachedEnvelope {
                    envelope: envelope(json!("x".repeat(500))),
                    expires_at_ms: 10,
                },
                0,
            )
            .await;
    }
    assert!(small.len() <= 14, "about 8000 bytes of 564-byte entries: {}", small.len());
}
