//! Request and answer bodies of the admin API (`wire.md` §6), shared by the server and the SDK.
//!
//! Times are Unix seconds (`created_at`, `expires_at`) or Unix milliseconds where sub-second
//! precision matters (`at_ms` of a call). Unknown fields are refused so a typo is an error, not a
//! silently ignored setting.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A rate limit: a steady rate and a burst (GCRA).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Calls per second allowed on average.
    pub per_second: f64,
    /// Calls allowed at once above the steady rate.
    pub burst: u32,
}

/// `POST apps`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewApp {
    /// A name for people.
    pub name: String,
    /// `miniprogram` (default), `minigame`, `official_account`, ...
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub app_type: Option<String>,
    /// The open account the app is bound to (unionid, consumeType 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_account: Option<String>,
    /// Registered pages, for code generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pages: Option<Vec<String>>,
    /// Theme colour `#rrggbb`, used by `auto_color`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub theme_color: Option<String>,
    /// Where souk pushes messages and events for the app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_url: Option<String>,
    /// The token pushes are signed with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_token: Option<String>,
    /// Origins allowed to call the client API (empty: any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_origins: Option<Vec<String>>,
    /// A rate limit over all of the app's service-market calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
}

/// `PATCH apps/{appid}`: every field optional; `null` clears an optional setting.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppPatch {
    /// New name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// New type.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub app_type: Option<String>,
    /// New open account (`null` unbinds).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "double_option")]
    pub open_account: Option<Option<String>>,
    /// New registered pages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pages: Option<Vec<String>>,
    /// New theme colour (`null` clears).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "double_option")]
    pub theme_color: Option<Option<String>>,
    /// New message URL (`null` clears).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "double_option")]
    pub message_url: Option<Option<String>>,
    /// New message token (`null` clears).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "double_option")]
    pub message_token: Option<Option<String>>,
    /// New allowed origins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_origins: Option<Vec<String>>,
    /// New rate limit (`null` removes it).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "double_option")]
    pub rate_limit: Option<Option<RateLimit>>,
    /// `true` disables the app: its tokens stop working and it can get no new ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
}

/// An app as the admin API shows it (never its secret or message token).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppView {
    /// `wx` + 16 hex.
    pub appid: String,
    /// Name.
    pub name: String,
    /// Type.
    #[serde(rename = "type")]
    pub app_type: String,
    /// Open account, if bound.
    pub open_account: Option<String>,
    /// Registered pages.
    pub pages: Vec<String>,
    /// Theme colour.
    pub theme_color: Option<String>,
    /// Message URL.
    pub message_url: Option<String>,
    /// Whether a message token is set (the token itself is not shown).
    pub message_token_set: bool,
    /// Allowed origins.
    pub allowed_origins: Vec<String>,
    /// Rate limit.
    pub rate_limit: Option<RateLimit>,
    /// Whether the app is disabled.
    pub disabled: bool,
    /// Unix seconds.
    pub created_at: i64,
}

/// `POST apps` and `POST apps/{appid}/secret` answers: the app and its secret, shown only here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppWithSecret {
    /// The app.
    #[serde(flatten)]
    pub app: AppView,
    /// The app secret; souk keeps only its hash.
    pub secret: String,
}

/// `POST services`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewService {
    /// The id (like `wx79ac3de8be320b71`); generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_id: Option<String>,
    /// A name for people.
    pub name: String,
    /// The signing secret; generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// `PATCH services/{service_id}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServicePatch {
    /// New name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// New signing secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// `true` disables the service: calls get "unknown service".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
}

/// A service as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceView {
    /// Id.
    pub service_id: String,
    /// Name.
    pub name: String,
    /// Whether the service is disabled.
    pub disabled: bool,
    /// Unix seconds.
    pub created_at: i64,
}

/// `POST services` answer: the service and its signing secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceWithSecret {
    /// The service.
    #[serde(flatten)]
    pub service: ServiceView,
    /// The secret souk signs provider requests with.
    pub secret: String,
}

/// Whether an API answers at once, as an async long task, or either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiMode {
    /// Sync only: `async: true` is bad input.
    Sync,
    /// Async only: a missing `async` is bad input.
    Async,
    /// Either.
    Both,
}

impl ApiMode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiMode::Sync => "sync",
            ApiMode::Async => "async",
            ApiMode::Both => "both",
        }
    }

    /// Parses the wire name.
    pub fn parse(name: &str) -> Option<ApiMode> {
        match name {
            "sync" => Some(ApiMode::Sync),
            "async" => Some(ApiMode::Async),
            "both" => Some(ApiMode::Both),
            _ => None,
        }
    }
}

/// `POST services/{service_id}/apis`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewApi {
    /// The API name callers use.
    pub name: String,
    /// Where souk POSTs the signed request.
    pub upstream_url: String,
    /// Sync, async or both.
    pub mode: ApiMode,
    /// Timeout of one provider call in milliseconds (default 10000, at most 60000 for sync).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// A JSON Schema `data` must satisfy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
    /// Units charged per successful call (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<i64>,
    /// A rate limit on this API over all callers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
}

/// `PATCH services/{service_id}/apis/{name}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiPatch {
    /// New upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_url: Option<String>,
    /// New mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ApiMode>,
    /// New timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// New schema (`null` removes it).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "double_option")]
    pub schema: Option<Option<Value>>,
    /// New price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<i64>,
    /// New rate limit (`null` removes it).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "double_option")]
    pub rate_limit: Option<Option<RateLimit>>,
}

/// An API as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiView {
    /// Owning service.
    pub service_id: String,
    /// Name.
    pub name: String,
    /// Upstream URL.
    pub upstream_url: String,
    /// Mode.
    pub mode: ApiMode,
    /// Timeout in milliseconds.
    pub timeout_ms: u64,
    /// Schema for `data`.
    pub schema: Option<Value>,
    /// Units per call.
    pub price: i64,
    /// Rate limit.
    pub rate_limit: Option<RateLimit>,
    /// Unix seconds.
    pub created_at: i64,
}

/// `POST packages`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPackage {
    /// The paying app.
    pub appid: String,
    /// The service the units are for.
    pub service_id: String,
    /// Units bought.
    pub units: i64,
    /// Unix seconds after which the package can no longer be used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

/// A resource package as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackageView {
    /// Id.
    pub package_id: String,
    /// Paying app.
    pub appid: String,
    /// Service.
    pub service_id: String,
    /// Units bought.
    pub units: i64,
    /// Units neither charged nor held by a call in flight.
    pub units_left: i64,
    /// Unix seconds, if the package expires.
    pub expires_at: Option<i64>,
    /// Unix seconds.
    pub created_at: i64,
}

/// One ledger entry: a charge reserved by a call, then committed or released.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerEntryView {
    /// The call that reserved it.
    pub request_id: String,
    /// Package charged.
    pub package_id: String,
    /// The app whose package pays.
    pub payer_appid: String,
    /// The app that made the call.
    pub caller_appid: String,
    /// Service.
    pub service_id: String,
    /// API.
    pub api: String,
    /// Units.
    pub units: i64,
    /// `reserved`, `committed` or `released`.
    pub state: String,
    /// Unix milliseconds.
    pub created_at_ms: i64,
    /// Unix milliseconds, once settled.
    pub settled_at_ms: Option<i64>,
}

/// `POST grants`: let `caller_appid` charge `payer_appid`'s packages with `consumeType: 2`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewGrant {
    /// The app whose packages pay.
    pub payer_appid: String,
    /// The app allowed to make them pay.
    pub caller_appid: String,
}

/// A grant as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantView {
    /// The app whose packages pay.
    pub payer_appid: String,
    /// The app allowed to make them pay.
    pub caller_appid: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// `POST payments`: the operator's payment system reports that a user paid an app (for
/// getPaidUnionId). Either `transaction_id` or both `mch_id` and `out_trade_no` name the order;
/// reporting the same order again changes nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPayment {
    /// The app paid.
    pub appid: String,
    /// The payer's openid in that app.
    pub openid: String,
    /// The payment's transaction id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    /// The merchant id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mch_id: Option<String>,
    /// The merchant's order number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_trade_no: Option<String>,
    /// The amount, in the smallest unit of the currency (fen).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<i64>,
    /// Unix seconds of the payment; default now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_at: Option<i64>,
}

/// A payment as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentView {
    /// souk's id of the payment.
    pub payment_id: String,
    /// The app paid.
    pub appid: String,
    /// The payer's openid.
    pub openid: String,
    /// The transaction id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    /// The merchant id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mch_id: Option<String>,
    /// The merchant's order number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_trade_no: Option<String>,
    /// The amount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<i64>,
    /// Unix seconds of the payment.
    pub paid_at: i64,
    /// Unix seconds of the report.
    pub created_at: i64,
}

/// `POST cloud-apps`: an external service of an app for the cloud gateway (`cloud-gateway.md` §1).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCloudApp {
    /// The owning app.
    pub appid: String,
    /// At most 20 origins `http(s)://host[:port]` calls may go to (no path, query or user info).
    pub whitelist: Vec<String>,
    /// Sent as the `env` context parameter (default `online`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// `md5` (default), `hmac` or `hmac-sha256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_method: Option<String>,
}

/// `PATCH cloud-apps/{cloud_app_id}`: every field optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudAppPatch {
    /// New whitelist (replaces the old one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub whitelist: Option<Vec<String>>,
    /// New environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// New signing method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_method: Option<String>,
    /// `true` refuses every call through the cloud app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
}

/// A cloud app as the admin API shows it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloudAppView {
    /// The `cloudAppId` pages name in `exts.cloudAppId` (16 digits).
    pub cloud_app_id: String,
    /// The owning app.
    pub appid: String,
    /// Sent as the `app_key` context parameter.
    pub app_key: String,
    /// Sent as the `env` context parameter.
    pub env: String,
    /// Normalised origins.
    pub whitelist: Vec<String>,
    /// `md5`, `hmac` or `hmac-sha256`.
    pub sign_method: String,
    /// Whether calls are refused.
    pub disabled: bool,
    /// Unix seconds.
    pub created_at: i64,
}

/// `POST cloud-apps` and `POST cloud-apps/{cloud_app_id}/secret` answers: the cloud app and the secret
/// requests to it are signed with, shown only here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloudAppWithSecret {
    /// The cloud app.
    #[serde(flatten)]
    pub cloud_app: CloudAppView,
    /// The signing secret.
    pub secret: String,
}

/// One logged call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallView {
    /// Request id (the `rid` of errmsg).
    pub request_id: String,
    /// Unix milliseconds when the call arrived.
    pub at_ms: i64,
    /// The route family (`token`, `stable_token`, `servicemarket`, ...).
    pub route: String,
    /// Calling app, when known.
    pub appid: Option<String>,
    /// End user, for client calls.
    pub openid: Option<String>,
    /// The plugin a client call came from (`appid` is its host app).
    #[serde(default)]
    pub plugin_appid: Option<String>,
    /// Service, for service-market calls.
    pub service_id: Option<String>,
    /// API, for service-market calls.
    pub api: Option<String>,
    /// The errcode answered (0 for success).
    pub errcode: i64,
    /// What went wrong, when something did.
    pub message: Option<String>,
    /// Microseconds from arrival to answer.
    pub latency_us: i64,
    /// The package charged, if one was.
    pub package_id: Option<String>,
    /// Request body bytes.
    pub bytes_in: i64,
    /// Answer body bytes.
    pub bytes_out: i64,
    /// Whether the answer came from a cache (or an idempotent replay).
    pub cache_hit: bool,
}

/// An async job as the admin API shows it (`GET jobs`, `GET jobs/{request_id}`). Times are Unix
/// seconds. The provider body is not shown, only its size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobView {
    /// The job's request id.
    pub request_id: String,
    /// Submitting app.
    pub appid: String,
    /// Paying app.
    pub payer_appid: String,
    /// End user, for client calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openid: Option<String>,
    /// Service.
    pub service_id: String,
    /// API.
    pub api: String,
    /// The package holding (or charged) its units.
    pub package_id: String,
    /// `pending`, `waiting` (for the provider's callback), `succeeded` or `failed`.
    pub state: String,
    /// Provider attempts so far.
    pub attempts: u32,
    /// Size of the provider body.
    pub body_bytes: u64,
    /// Submission time.
    pub created_at: i64,
    /// When it may next be claimed (unfinished jobs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<i64>,
    /// When it fails if unfinished.
    pub deadline: i64,
    /// Completion time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<i64>,
    /// The worker holding it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_owner: Option<String>,
    /// Until when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until: Option<i64>,
    /// Why the last attempt did not finish it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// A succeeded job's data (a JSON string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// A failed job's errcode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errcode: Option<i64>,
    /// A failed job's message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errmsg: Option<String>,
}

/// Every list endpoint's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct List<T> {
    /// The page.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// The error body of souk's own APIs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The code's name (admin API) or number (client API).
    #[serde(rename = "errCode")]
    pub err_code: Value,
    /// What went wrong.
    #[serde(rename = "errMsg")]
    pub err_msg: String,
    /// The request id, to find the call in the log.
    #[serde(rename = "requestID")]
    pub request_id: String,
}

/// Serde helpers for `Option<Option<T>>`: absent = leave alone, `null` = clear, value = set.
mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<T: Serialize, S: Serializer>(value: &Option<Option<T>>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(inner) => inner.serialize(serializer),
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(deserializer).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_distinguishes_absent_null_and_value() {
        let absent: AppPatch = serde_json::from_str("{}").unwrap();
        assert_eq!(absent.open_account, None);
        let cleared: AppPatch = serde_json::from_str(r#"{"open_account":null}"#).unwrap();
        assert_eq!(cleared.open_account, Some(None));
        let set: AppPatch = serde_json::from_str(r#"{"open_account":"oa1"}"#).unwrap();
        assert_eq!(set.open_account, Some(Some("oa1".to_owned())));
        assert_eq!(serde_json::to_string(&cleared).unwrap(), r#"{"open_account":null}"#);
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_json::from_str::<NewApp>(r#"{"name":"x","nmae":"y"}"#).is_err());
        assert!(serde_json::from_str::<NewApi>(r#"{"name":"x","upstream_url":"http://a","mode":"sometimes"}"#).is_err());
    }
}
