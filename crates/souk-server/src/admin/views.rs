//! Domain records to the admin API's views (secrets never included).

use souk_core::model::{Api, App, CallRecord, LedgerEntry, Package, Service};
use souk_types::admin::{ApiView, AppView, CallView, LedgerEntryView, PackageView, ServiceView};

fn seconds(ms: i64) -> i64 {
    ms.div_euclid(1000)
}

/// An app's view.
pub fn app_view(app: &App) -> AppView {
    AppView {
        appid: app.appid.clone(),
        name: app.name.clone(),
        app_type: app.app_type.clone(),
        open_account: app.open_account.clone(),
        pages: app.pages.clone(),
        theme_color: app.theme_color.clone(),
        message_url: app.message_url.clone(),
        message_token_set: app.message_token.is_some(),
        allowed_origins: app.allowed_origins.clone(),
        rate_limit: app.rate_limit,
        disabled: app.disabled,
        created_at: seconds(app.created_at_ms),
    }
}

/// A service's view.
pub fn service_view(service: &Service) -> ServiceView {
    ServiceView {
        service_id: service.service_id.clone(),
        name: service.name.clone(),
        disabled: service.disabled,
        created_at: seconds(service.created_at_ms),
    }
}

/// An API's view.
pub fn api_view(api: &Api) -> ApiView {
    ApiView {
        service_id: api.service_id.clone(),
        name: api.name.clone(),
        upstream_url: api.upstream_url.clone(),
        mode: api.mode,
        timeout_ms: api.timeout_ms,
        schema: api.schema.clone(),
        price: api.price,
        rate_limit: api.rate_limit,
        created_at: seconds(api.created_at_ms),
    }
}

/// A package's view.
pub fn package_view(package: &Package) -> PackageView {
    PackageView {
        package_id: package.package_id.clone(),
        appid: package.appid.clone(),
        service_id: package.service_id.clone(),
        units: package.units,
        units_left: package.units_left,
        expires_at: package.expires_at_ms.map(seconds),
        created_at: seconds(package.created_at_ms),
    }
}

/// A ledger entry's view.
pub fn ledger_view(entry: &LedgerEntry) -> LedgerEntryView {
    LedgerEntryView {
        request_id: entry.request_id.clone(),
        package_id: entry.package_id.clone(),
        payer_appid: entry.payer_appid.clone(),
        caller_appid: entry.caller_appid.clone(),
        service_id: entry.service_id.clone(),
        api: entry.api.clone(),
        units: entry.units,
        state: entry.state.as_str().to_owned(),
        created_at_ms: entry.created_at_ms,
        settled_at_ms: entry.settled_at_ms,
    }
}

/// A call's view.
pub fn call_view(call: CallRecord) -> CallView {
    CallView {
        request_id: call.request_id,
        at_ms: call.at_ms,
        route: call.route,
        appid: call.appid,
        openid: call.openid,
        plugin_appid: call.plugin_appid,
        service_id: call.service_id,
        api: call.api,
        errcode: call.errcode,
        message: call.message,
        latency_us: call.latency_us,
        package_id: call.package_id,
        bytes_in: call.bytes_in,
        bytes_out: call.bytes_out,
        cache_hit: call.cache_hit,
    }
}
