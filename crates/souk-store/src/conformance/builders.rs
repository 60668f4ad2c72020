//! Records with every field filled, for the conformance cases and other crates' tests.

use serde_json::json;
use souk_core::model::{Api, App, CallRecord, Package, ReserveOutcome, ReserveRequest, Service, Settlement, TokenKind, TokenRecord};
use souk_types::admin::{ApiMode, RateLimit};

use super::Store;

/// An app with every optional field set.
pub fn app(appid: &str) -> App {
    App {
        appid: appid.to_owned(),
        name: format!("app {appid}"),
        app_type: "miniprogram".to_owned(),
        secret_hash: "ab".repeat(32),
        open_account: Some("open-1".to_owned()),
        pages: vec!["pages/index/index".to_owned(), "pages/me/me".to_owned()],
        theme_color: Some("#07c160".to_owned()),
        message_url: Some("https://example.com/push".to_owned()),
        message_token: Some("push-token".to_owned()),
        allowed_origins: vec!["https://a.example".to_owned()],
        rate_limit: Some(RateLimit {
            per_second: 12.5,
            burst: 40,
        }),
        disabled: false,
        created_at_ms: 1_700_000_000_123,
    }
}

/// An enabled service.
pub fn service(service_id: &str) -> Service {
    Service {
        service_id: service_id.to_owned(),
        name: format!("service {service_id}"),
        secret: "s3cret".to_owned(),
        disabled: false,
        created_at_ms: 1_700_000_000_456,
    }
}

/// A sync API with a schema and a rate limit.
pub fn api(service_id: &str, name: &str) -> Api {
    Api {
        service_id: service_id.to_owned(),
        name: name.to_owned(),
        upstream_url: format!("https://provider.example/{name}"),
        mode: ApiMode::Sync,
        timeout_ms: 10_000,
        schema: Some(json!({"type": "object", "required": ["q"], "properties": {"q": {"type": "string"}}})),
        price: 2,
        rate_limit: Some(RateLimit { per_second: 0.5, burst: 1 }),
        created_at_ms: 1_700_000_000_789,
    }
}

/// A package with `units` units, all left.
pub fn package(package_id: &str, appid: &str, service_id: &str, units: i64, expires_at_ms: Option<i64>, created_at_ms: i64) -> Package {
    Package {
        package_id: package_id.to_owned(),
        appid: appid.to_owned(),
        service_id: service_id.to_owned(),
        units,
        units_left: units,
        expires_at_ms,
        created_at_ms,
    }
}

/// A live token issued at `issued_at_ms`, valid 7200 s.
pub fn token(token_hash: &str, appid: &str, kind: TokenKind, issued_at_ms: i64) -> TokenRecord {
    TokenRecord {
        token_hash: token_hash.to_owned(),
        plaintext: (kind == TokenKind::Stable).then(|| format!("plain-{token_hash}")),
        appid: appid.to_owned(),
        kind,
        issued_at_ms,
        expires_at_ms: issued_at_ms + 7_200_000,
        superseded: false,
        dies_at_ms: None,
    }
}

/// A reservation of `units` by `payer` (also the caller) on `service`, without `client_msg_id`.
pub fn reservation(request_id: &str, payer: &str, service_id: &str, units: i64, now_ms: i64) -> ReserveRequest {
    ReserveRequest {
        request_id: request_id.to_owned(),
        payer_appid: payer.to_owned(),
        caller_appid: payer.to_owned(),
        service_id: service_id.to_owned(),
        api: "search".to_owned(),
        units,
        now_ms,
        client_msg_id: None,
    }
}

/// The same reservation with a `client_msg_id`.
pub fn with_msg_id(mut request: ReserveRequest, client_msg_id: &str) -> ReserveRequest {
    request.client_msg_id = Some(client_msg_id.to_owned());
    request
}

/// A settlement without an answer to keep.
pub fn settlement(request_id: &str, commit: bool, now_ms: i64) -> Settlement {
    Settlement {
        request_id: request_id.to_owned(),
        commit,
        now_ms,
        answer: None,
    }
}

/// A logged call.
pub fn call(request_id: &str, at_ms: i64, appid: &str, service_id: &str, api: &str, errcode: i64) -> CallRecord {
    CallRecord {
        plugin_appid: None,
        request_id: request_id.to_owned(),
        at_ms,
        route: "servicemarket".to_owned(),
        appid: Some(appid.to_owned()),
        openid: Some("o-user".to_owned()),
        service_id: Some(service_id.to_owned()),
        api: Some(api.to_owned()),
        errcode,
        message: (errcode != 0).then(|| "failed".to_owned()),
        latency_us: 1234,
        package_id: Some("pkg-1".to_owned()),
        bytes_in: 100,
        bytes_out: 200,
        cache_hit: errcode == 0,
    }
}

pub(super) fn reserved(package_id: &str) -> ReserveOutcome {
    ReserveOutcome::Reserved {
        package_id: package_id.to_owned(),
    }
}

pub(super) async fn units_left(store: &Store, package_id: &str) -> i64 {
    store.get_package(package_id).await.unwrap().expect("package exists").units_left
}

pub(super) const APP_A: &str = "wx00000000000000aa";
pub(super) const APP_B: &str = "wx00000000000000bb";
pub(super) const SVC: &str = "wx79ac3de8be320b71";
pub(super) const SVC2: &str = "wx0000000000000002";
