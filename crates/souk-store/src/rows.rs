//! Rows as both backends read them, and their mapping to and from the domain records of
//! [`souk_core::model`]. JSON-ish fields are TEXT holding JSON; enums are their storage names.

use serde_json::Value;
use souk_core::model::{Api, App, CallRecord, ChargeState, IdempotencyRecord, LedgerEntry, Package, Service, TokenKind, TokenRecord};
use souk_core::store::StoreError;
use souk_types::admin::{ApiMode, RateLimit};

use crate::error::{bad_json, bad_value};

/// Columns of `apps`, in table order.
pub(crate) const APP_COLUMNS: &str = "appid, name, app_type, secret_hash, open_account, pages, theme_color, message_url, \
     message_token, allowed_origins, rate_limit, disabled, created_at_ms";
/// Columns of `services`.
pub(crate) const SERVICE_COLUMNS: &str = "service_id, name, secret, disabled, created_at_ms";
/// Columns of `apis`.
pub(crate) const API_COLUMNS: &str = "service_id, name, upstream_url, mode, timeout_ms, schema, price, rate_limit, created_at_ms";
/// Columns of `packages`.
pub(crate) const PACKAGE_COLUMNS: &str = "package_id, appid, service_id, units, units_left, expires_at_ms, created_at_ms";
/// Columns of `tokens`.
pub(crate) const TOKEN_COLUMNS: &str = "token_hash, appid, kind, plaintext, issued_at_ms, expires_at_ms, superseded, dies_at_ms";
/// Columns of `charges`.
pub(crate) const CHARGE_COLUMNS: &str =
    "request_id, package_id, payer_appid, caller_appid, service_id, api, units, state, created_at_ms, settled_at_ms";
/// Columns of `calls`.
pub(crate) const CALL_COLUMNS: &str = "request_id, at_ms, route, appid, openid, service_id, api, errcode, message, \
     latency_us, package_id, bytes_in, bytes_out, cache_hit, plugin_appid";

/// A row of `apps`.
#[derive(sqlx::FromRow)]
pub(crate) struct AppRow {
    appid: String,
    name: String,
    app_type: String,
    secret_hash: String,
    open_account: Option<String>,
    pages: String,
    theme_color: Option<String>,
    message_url: Option<String>,
    message_token: Option<String>,
    allowed_origins: String,
    rate_limit: Option<String>,
    disabled: bool,
    created_at_ms: i64,
}

impl TryFrom<AppRow> for App {
    type Error = StoreError;

    fn try_from(row: AppRow) -> Result<App, StoreError> {
        Ok(App {
            pages: from_json("apps.pages", &row.pages)?,
            allowed_origins: from_json("apps.allowed_origins", &row.allowed_origins)?,
            rate_limit: from_json_opt::<RateLimit>("apps.rate_limit", row.rate_limit.as_deref())?,
            appid: row.appid,
            name: row.name,
            app_type: row.app_type,
            secret_hash: row.secret_hash,
            open_account: row.open_account,
            theme_color: row.theme_color,
            message_url: row.message_url,
            message_token: row.message_token,
            disabled: row.disabled,
            created_at_ms: row.created_at_ms,
        })
    }
}

/// An app's JSON columns, encoded: `(pages, allowed_origins, rate_limit)`.
pub(crate) fn app_json(app: &App) -> Result<(String, String, Option<String>), StoreError> {
    Ok((
        to_json(&app.pages)?,
        to_json(&app.allowed_origins)?,
        app.rate_limit.as_ref().map(to_json).transpose()?,
    ))
}

/// A row of `services`.
#[derive(sqlx::FromRow)]
pub(crate) struct ServiceRow {
    service_id: String,
    name: String,
    secret: String,
    disabled: bool,
    created_at_ms: i64,
}

impl From<ServiceRow> for Service {
    fn from(row: ServiceRow) -> Service {
        Service {
            service_id: row.service_id,
            name: row.name,
            secret: row.secret,
            disabled: row.disabled,
            created_at_ms: row.created_at_ms,
        }
    }
}

/// A row of `apis`.
#[derive(sqlx::FromRow)]
pub(crate) struct ApiRow {
    service_id: String,
    name: String,
    upstream_url: String,
    mode: String,
    timeout_ms: i64,
    schema: Option<String>,
    price: i64,
    rate_limit: Option<String>,
    created_at_ms: i64,
}

impl TryFrom<ApiRow> for Api {
    type Error = StoreError;

    fn try_from(row: ApiRow) -> Result<Api, StoreError> {
        Ok(Api {
            mode: ApiMode::parse(&row.mode).ok_or_else(|| bad_value("apis.mode"))?,
            timeout_ms: u64::try_from(row.timeout_ms).map_err(|_| bad_value("apis.timeout_ms"))?,
            schema: from_json_opt::<Value>("apis.schema", row.schema.as_deref())?,
            rate_limit: from_json_opt::<RateLimit>("apis.rate_limit", row.rate_limit.as_deref())?,
            service_id: row.service_id,
            name: row.name,
            upstream_url: row.upstream_url,
            price: row.price,
            created_at_ms: row.created_at_ms,
        })
    }
}

/// An API's encoded columns: `(timeout_ms, schema, rate_limit)`.
pub(crate) fn api_columns(api: &Api) -> Result<(i64, Option<String>, Option<String>), StoreError> {
    Ok((
        i64::try_from(api.timeout_ms).map_err(|_| StoreError::Internal("timeout_ms out of range".into()))?,
        api.schema.as_ref().map(to_json).transpose()?,
        api.rate_limit.as_ref().map(to_json).transpose()?,
    ))
}

/// A row of `packages`.
#[derive(sqlx::FromRow)]
pub(crate) struct PackageRow {
    package_id: String,
    appid: String,
    service_id: String,
    units: i64,
    units_left: i64,
    expires_at_ms: Option<i64>,
    created_at_ms: i64,
}

impl From<PackageRow> for Package {
    fn from(row: PackageRow) -> Package {
        Package {
            package_id: row.package_id,
            appid: row.appid,
            service_id: row.service_id,
            units: row.units,
            units_left: row.units_left,
            expires_at_ms: row.expires_at_ms,
            created_at_ms: row.created_at_ms,
        }
    }
}

/// A row of `tokens`.
#[derive(sqlx::FromRow)]
pub(crate) struct TokenRow {
    token_hash: String,
    appid: String,
    kind: String,
    plaintext: Option<String>,
    issued_at_ms: i64,
    expires_at_ms: i64,
    superseded: bool,
    dies_at_ms: Option<i64>,
}

impl TryFrom<TokenRow> for TokenRecord {
    type Error = StoreError;

    fn try_from(row: TokenRow) -> Result<TokenRecord, StoreError> {
        Ok(TokenRecord {
            kind: TokenKind::parse(&row.kind).ok_or_else(|| bad_value("tokens.kind"))?,
            token_hash: row.token_hash,
            plaintext: row.plaintext,
            appid: row.appid,
            issued_at_ms: row.issued_at_ms,
            expires_at_ms: row.expires_at_ms,
            superseded: row.superseded,
            dies_at_ms: row.dies_at_ms,
        })
    }
}

/// A row of `idempotency` (the part callers see).
#[derive(sqlx::FromRow)]
pub(crate) struct IdempotencyRow {
    request_id: String,
    answer: Option<String>,
}

impl From<IdempotencyRow> for IdempotencyRecord {
    fn from(row: IdempotencyRow) -> IdempotencyRecord {
        IdempotencyRecord {
            request_id: row.request_id,
            answer: row.answer,
        }
    }
}

/// A row of `charges`.
#[derive(sqlx::FromRow)]
pub(crate) struct ChargeRow {
    request_id: String,
    package_id: String,
    payer_appid: String,
    caller_appid: String,
    service_id: String,
    api: String,
    units: i64,
    state: String,
    created_at_ms: i64,
    settled_at_ms: Option<i64>,
}

impl TryFrom<ChargeRow> for LedgerEntry {
    type Error = StoreError;

    fn try_from(row: ChargeRow) -> Result<LedgerEntry, StoreError> {
        Ok(LedgerEntry {
            state: ChargeState::parse(&row.state).ok_or_else(|| bad_value("charges.state"))?,
            request_id: row.request_id,
            package_id: row.package_id,
            payer_appid: row.payer_appid,
            caller_appid: row.caller_appid,
            service_id: row.service_id,
            api: row.api,
            units: row.units,
            created_at_ms: row.created_at_ms,
            settled_at_ms: row.settled_at_ms,
        })
    }
}

/// A row of `calls`.
#[derive(sqlx::FromRow)]
pub(crate) struct CallRow {
    request_id: String,
    at_ms: i64,
    route: String,
    appid: Option<String>,
    openid: Option<String>,
    service_id: Option<String>,
    api: Option<String>,
    errcode: i64,
    message: Option<String>,
    latency_us: i64,
    package_id: Option<String>,
    bytes_in: i64,
    bytes_out: i64,
    cache_hit: bool,
    plugin_appid: Option<String>,
}

impl From<CallRow> for CallRecord {
    fn from(row: CallRow) -> CallRecord {
        CallRecord {
            request_id: row.request_id,
            at_ms: row.at_ms,
            route: row.route,
            appid: row.appid,
            openid: row.openid,
            plugin_appid: row.plugin_appid,
            service_id: row.service_id,
            api: row.api,
            errcode: row.errcode,
            message: row.message,
            latency_us: row.latency_us,
            package_id: row.package_id,
            bytes_in: row.bytes_in,
            bytes_out: row.bytes_out,
            cache_hit: row.cache_hit,
        }
    }
}

/// How a failed reservation is explained, from the payer's packages for the service.
pub(crate) fn no_package_outcome(total: i64, unexpired: i64) -> souk_core::model::ReserveOutcome {
    use souk_core::model::ReserveOutcome;
    if total == 0 {
        ReserveOutcome::NoPackage
    } else if unexpired > 0 {
        ReserveOutcome::Exhausted
    } else {
        ReserveOutcome::Expired
    }
}

/// Converts rows with a fallible mapping.
pub(crate) fn map_all<R, T>(rows: Vec<R>) -> Result<Vec<T>, StoreError>
where
    T: TryFrom<R, Error = StoreError>,
{
    rows.into_iter().map(T::try_from).collect()
}

/// A page size as SQL wants it.
pub(crate) fn limit(limit: u32) -> i64 {
    i64::from(limit)
}

fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Internal(format!("cannot encode JSON: {e}")))
}

fn from_json<T: serde::de::DeserializeOwned>(column: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| bad_json(column, &e))
}

fn from_json_opt<T: serde::de::DeserializeOwned>(column: &str, text: Option<&str>) -> Result<Option<T>, StoreError> {
    text.map(|t| from_json(column, t)).transpose()
}

/// The force-refresh rule on the stored `(day, count, last_at_ms)`: the new count when allowed,
/// else the refusal.
pub(crate) fn force_refresh_decision(
    stored: Option<(i64, i64, Option<i64>)>,
    day: i64,
    now_ms: i64,
    min_gap_ms: i64,
    max_per_day: u32,
) -> Result<i64, souk_core::model::ForceRefresh> {
    use souk_core::model::ForceRefresh;
    let Some((stored_day, count, last_at_ms)) = stored else {
        return if max_per_day == 0 { Err(ForceRefresh::DailyLimit) } else { Ok(1) };
    };
    if last_at_ms.is_some_and(|last| now_ms.saturating_sub(last) < min_gap_ms) {
        return Err(ForceRefresh::TooSoon);
    }
    if stored_day == day {
        if count >= i64::from(max_per_day) {
            Err(ForceRefresh::DailyLimit)
        } else {
            Ok(count + 1)
        }
    } else if max_per_day == 0 {
        Err(ForceRefresh::DailyLimit)
    } else {
        Ok(1)
    }
}
