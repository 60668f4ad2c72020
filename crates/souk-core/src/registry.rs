//! The registry: cached lookups for the hot path, and the operator's operations on apps, services,
//! APIs and packages, each validated with a message that says what is wrong.

use std::sync::Arc;

use serde_json::Value;
use souk_types::admin::{ApiPatch, AppPatch, NewApi, NewApp, NewPackage, NewService, RateLimit, ServicePatch};
use souk_types::Code;

use crate::error::{Failure, Result};
use crate::ids;
use crate::model::{Api, App, CallFilter, CallRecord, LedgerEntry, Package, PackageFilter, Service, TokenKind};
use crate::signals::Signal;
use crate::souk::{CachedApi, Souk};
use crate::store::StoreError;

/// Default timeout of one provider call.
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;
/// The longest timeout an API may have (the longest a sync call waits).
pub const MAX_TIMEOUT_MS: u64 = 60_000;
/// The longest timeout an API that runs async (mode `async` or `both`) may have: one direct wait
/// of an async job's worker. A `both` API called sync still waits at most [`MAX_TIMEOUT_MS`].
pub const MAX_ASYNC_TIMEOUT_MS: u64 = 600_000;
const MAX_NAME_LEN: usize = 64;
const MAX_PAGES: usize = 1_000;

fn invalid(detail: impl Into<String>) -> Failure {
    Failure::new(Code::AdminInvalidRequest, detail)
}

fn admin_store_error(err: &StoreError, what: &str) -> Failure {
    match err {
        StoreError::NotFound => Failure::new(Code::AdminNotFound, format!("{what} not found")),
        StoreError::AlreadyExists => Failure::new(Code::AdminConflict, format!("{what} already exists")),
        other => Failure::from_store(Code::SystemError, other),
    }
}

fn check_name(field: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() || value.len() > MAX_NAME_LEN {
        return Err(invalid(format!("{field} must be 1 to {MAX_NAME_LEN} bytes")));
    }
    Ok(())
}

fn check_id(field: &str, value: &str) -> Result<()> {
    let ok = !value.is_empty()
        && value.len() <= MAX_NAME_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if !ok {
        return Err(invalid(format!(
            "{field} must be 1 to {MAX_NAME_LEN} characters of A-Z a-z 0-9 _ - ."
        )));
    }
    Ok(())
}

fn check_http_url(field: &str, value: &str) -> Result<()> {
    let parsed = url::Url::parse(value).map_err(|err| invalid(format!("{field} is not a URL: {err}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(invalid(format!("{field} must be an http:// or https:// URL with a host")));
    }
    Ok(())
}

fn check_rate_limit(limit: Option<&RateLimit>) -> Result<()> {
    if let Some(limit) = limit {
        if !(limit.per_second.is_finite() && limit.per_second > 0.0) || limit.burst == 0 {
            return Err(invalid("rate_limit needs per_second > 0 and burst >= 1"));
        }
    }
    Ok(())
}

fn check_timeout(timeout_ms: u64, mode: souk_types::admin::ApiMode) -> Result<()> {
    let max = match mode {
        souk_types::admin::ApiMode::Sync => MAX_TIMEOUT_MS,
        _ => MAX_ASYNC_TIMEOUT_MS,
    };
    if timeout_ms == 0 || timeout_ms > max {
        return Err(invalid(format!("timeout_ms must be 1 to {max} for a {} api", mode.as_str())));
    }
    Ok(())
}

fn check_price(price: i64) -> Result<()> {
    if !(0..=1_000_000).contains(&price) {
        return Err(invalid("price must be 0 to 1000000 units"));
    }
    Ok(())
}

fn compile_schema(schema: &Value) -> Result<jsonschema::Validator> {
    jsonschema::validator_for(schema).map_err(|err| invalid(format!("schema is not a valid JSON Schema: {err}")))
}

fn check_colour(value: Option<&str>) -> Result<()> {
    if let Some(colour) = value {
        let ok = colour.len() == 7 && colour.starts_with('#') && colour[1..].bytes().all(|b| b.is_ascii_hexdigit());
        if !ok {
            return Err(invalid("theme_color must look like #rrggbb"));
        }
    }
    Ok(())
}

fn check_app_fields(app: &App) -> Result<()> {
    check_name("name", &app.name)?;
    check_name("type", &app.app_type)?;
    check_colour(app.theme_color.as_deref())?;
    if let Some(url) = &app.message_url {
        check_http_url("message_url", url)?;
    }
    if app.pages.len() > MAX_PAGES
        || app
            .pages
            .iter()
            .any(|page| page.is_empty() || page.starts_with('/') || page.contains('?'))
    {
        return Err(invalid(format!(
            "pages: at most {MAX_PAGES}, each non-empty, without a leading / or a query"
        )));
    }
    for origin in &app.allowed_origins {
        check_http_url("allowed_origins", origin)?;
    }
    check_rate_limit(app.rate_limit.as_ref())
}

impl Souk {
    /// An app, from the cache or the store.
    pub async fn find_app(&self, appid: &str) -> Result<Option<Arc<App>>, StoreError> {
        let now_ms = self.now_ms();
        let stamp = match self.apps.get(appid, now_ms) {
            Ok(cached) => return Ok(cached),
            Err(stamp) => stamp,
        };
        let found = self.store.get_app(appid).await?.map(Arc::new);
        self.apps.insert(appid.to_owned(), found.clone(), now_ms, stamp);
        Ok(found)
    }

    /// A service, from the cache or the store.
    pub async fn find_service(&self, service_id: &str) -> Result<Option<Arc<Service>>, StoreError> {
        let now_ms = self.now_ms();
        let stamp = match self.services.get(service_id, now_ms) {
            Ok(cached) => return Ok(cached),
            Err(stamp) => stamp,
        };
        let found = self.store.get_service(service_id).await?.map(Arc::new);
        self.services.insert(service_id.to_owned(), found.clone(), now_ms, stamp);
        Ok(found)
    }

    /// An API with its compiled schema, from the cache or the store.
    pub async fn find_api(&self, service_id: &str, name: &str) -> Result<Option<Arc<CachedApi>>, StoreError> {
        let now_ms = self.now_ms();
        let key = (service_id.to_owned(), name.to_owned());
        let stamp = match self.apis.get(&key, now_ms) {
            Ok(cached) => return Ok(cached),
            Err(stamp) => stamp,
        };
        let found = self.store.get_api(service_id, name).await?.map(|api| {
            // A schema was validated when it was stored; one that no longer compiles is logged and skipped.
            let validator = api.schema.as_ref().and_then(|schema| match jsonschema::validator_for(schema) {
                Ok(validator) => Some(validator),
                Err(err) => {
                    tracing::error!(service_id, api = name, error = %err, "stored schema does not compile");
                    None
                }
            });
            Arc::new(CachedApi { api, validator })
        });
        self.apis.insert(key, found.clone(), now_ms, stamp);
        Ok(found)
    }

    /// Registers an app; answers it with its secret (shown only here).
    pub async fn create_app(&self, new: NewApp) -> Result<(App, String)> {
        let secret = ids::new_secret();
        let app = App {
            appid: ids::new_appid(),
            name: new.name,
            app_type: new.app_type.unwrap_or_else(|| "miniprogram".to_owned()),
            secret_hash: ids::hash_secret(&secret),
            open_account: new.open_account,
            pages: new.pages.unwrap_or_default(),
            theme_color: new.theme_color,
            message_url: new.message_url,
            message_token: new.message_token,
            allowed_origins: new.allowed_origins.unwrap_or_default(),
            rate_limit: new.rate_limit,
            disabled: false,
            created_at_ms: self.now_ms(),
        };
        check_app_fields(&app)?;
        self.store.insert_app(&app).await.map_err(|err| admin_store_error(&err, "app"))?;
        self.signal(Signal::App { appid: app.appid.clone() }).await;
        Ok((app, secret))
    }

    /// One app for the operator.
    pub async fn get_app(&self, appid: &str) -> Result<App> {
        let app = self.store.get_app(appid).await.map_err(|err| admin_store_error(&err, "app"))?;
        app.ok_or_else(|| Failure::new(Code::AdminNotFound, format!("app {appid} not found")))
    }

    /// A page of apps.
    pub async fn list_apps(&self, after: Option<&str>, limit: u32) -> Result<Vec<App>> {
        self.store
            .list_apps(after, limit)
            .await
            .map_err(|err| admin_store_error(&err, "app"))
    }

    /// Changes an app. Disabling it stops its tokens at once (they are checked against the app).
    pub async fn update_app(&self, appid: &str, patch: AppPatch) -> Result<App> {
        let mut app = self.get_app(appid).await?;
        if let Some(name) = patch.name {
            app.name = name;
        }
        if let Some(app_type) = patch.app_type {
            app.app_type = app_type;
        }
        if let Some(open_account) = patch.open_account {
            app.open_account = open_account;
        }
        if let Some(pages) = patch.pages {
            app.pages = pages;
        }
        if let Some(theme_color) = patch.theme_color {
            app.theme_color = theme_color;
        }
        if let Some(message_url) = patch.message_url {
            app.message_url = message_url;
        }
        if let Some(message_token) = patch.message_token {
            app.message_token = message_token;
        }
        if let Some(origins) = patch.allowed_origins {
            app.allowed_origins = origins;
        }
        if let Some(rate_limit) = patch.rate_limit {
            app.rate_limit = rate_limit;
        }
        if let Some(disabled) = patch.disabled {
            app.disabled = disabled;
        }
        check_app_fields(&app)?;
        self.store.update_app(&app).await.map_err(|err| admin_store_error(&err, "app"))?;
        self.signal(Signal::App { appid: appid.to_owned() }).await;
        Ok(app)
    }

    /// Gives an app a new secret; the old one stops working for new tokens at once. Issued tokens
    /// keep working until they expire, as on the public platform; client sessions end at once.
    pub async fn rotate_app_secret(&self, appid: &str) -> Result<(App, String)> {
        let mut app = self.get_app(appid).await?;
        let secret = ids::new_secret();
        app.secret_hash = ids::hash_secret(&secret);
        self.store.update_app(&app).await.map_err(|err| admin_store_error(&err, "app"))?;
        self.signal(Signal::App { appid: appid.to_owned() }).await;
        self.revoke_client_sessions(appid).await?;
        Ok((app, secret))
    }

    /// Registers a service; answers it (its secret included, to show once).
    pub async fn create_service(&self, new: NewService) -> Result<Service> {
        let service_id = new.service_id.unwrap_or_else(ids::new_service_id);
        check_id("service_id", &service_id)?;
        check_name("name", &new.name)?;
        let secret = new.secret.unwrap_or_else(ids::new_secret);
        if secret.len() < 8 || secret.len() > 256 {
            return Err(invalid("secret must be 8 to 256 bytes"));
        }
        let service = Service {
            service_id,
            name: new.name,
            secret,
            disabled: false,
            created_at_ms: self.now_ms(),
        };
        self.store
            .insert_service(&service)
            .await
            .map_err(|err| admin_store_error(&err, "service"))?;
        self.signal(Signal::Service {
            service_id: service.service_id.clone(),
        })
        .await;
        Ok(service)
    }

    /// One service for the operator.
    pub async fn get_service(&self, service_id: &str) -> Result<Service> {
        let service = self
            .store
            .get_service(service_id)
            .await
            .map_err(|err| admin_store_error(&err, "service"))?;
        service.ok_or_else(|| Failure::new(Code::AdminNotFound, format!("service {service_id} not found")))
    }

    /// A page of services.
    pub async fn list_services(&self, after: Option<&str>, limit: u32) -> Result<Vec<Service>> {
        self.store
            .list_services(after, limit)
            .await
            .map_err(|err| admin_store_error(&err, "service"))
    }

    /// Changes a service.
    pub async fn update_service(&self, service_id: &str, patch: ServicePatch) -> Result<Service> {
        let mut service = self.get_service(service_id).await?;
        if let Some(name) = patch.name {
            check_name("name", &name)?;
            service.name = name;
        }
        if let Some(secret) = patch.secret {
            if secret.len() < 8 || secret.len() > 256 {
                return Err(invalid("secret must be 8 to 256 bytes"));
            }
            service.secret = secret;
        }
        if let Some(disabled) = patch.disabled {
            service.disabled = disabled;
        }
        self.store
            .update_service(&service)
            .await
            .map_err(|err| admin_store_error(&err, "service"))?;
        self.signal(Signal::Service {
            service_id: service_id.to_owned(),
        })
        .await;
        Ok(service)
    }

    /// Registers an API of a service.
    pub async fn create_api(&self, service_id: &str, new: NewApi) -> Result<Api> {
        check_id("name", &new.name)?;
        let api = Api {
            service_id: service_id.to_owned(),
            name: new.name,
            upstream_url: new.upstream_url,
            mode: new.mode,
            timeout_ms: new.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS),
            schema: new.schema,
            price: new.price.unwrap_or(1),
            rate_limit: new.rate_limit,
            created_at_ms: self.now_ms(),
        };
        check_api_fields(&api)?;
        self.store.insert_api(&api).await.map_err(|err| match err {
            StoreError::NotFound => Failure::new(Code::AdminNotFound, format!("service {service_id} not found")),
            other => admin_store_error(&other, "api"),
        })?;
        self.signal(Signal::Api {
            service_id: api.service_id.clone(),
            name: api.name.clone(),
        })
        .await;
        Ok(api)
    }

    /// One API for the operator.
    pub async fn get_api(&self, service_id: &str, name: &str) -> Result<Api> {
        let api = self
            .store
            .get_api(service_id, name)
            .await
            .map_err(|err| admin_store_error(&err, "api"))?;
        api.ok_or_else(|| Failure::new(Code::AdminNotFound, format!("api {name} of service {service_id} not found")))
    }

    /// A service's APIs.
    pub async fn list_apis(&self, service_id: &str) -> Result<Vec<Api>> {
        self.get_service(service_id).await?;
        self.store.list_apis(service_id).await.map_err(|err| admin_store_error(&err, "api"))
    }

    /// Changes an API (its upstream, mode, timeout, schema, price or limit).
    pub async fn update_api(&self, service_id: &str, name: &str, patch: ApiPatch) -> Result<Api> {
        let mut api = self.get_api(service_id, name).await?;
        if let Some(upstream_url) = patch.upstream_url {
            api.upstream_url = upstream_url;
        }
        if let Some(mode) = patch.mode {
            api.mode = mode;
        }
        if let Some(timeout_ms) = patch.timeout_ms {
            api.timeout_ms = timeout_ms;
        }
        if let Some(schema) = patch.schema {
            api.schema = schema;
        }
        if let Some(price) = patch.price {
            api.price = price;
        }
        if let Some(rate_limit) = patch.rate_limit {
            api.rate_limit = rate_limit;
        }
        check_api_fields(&api)?;
        self.store.update_api(&api).await.map_err(|err| admin_store_error(&err, "api"))?;
        self.signal(Signal::Api {
            service_id: service_id.to_owned(),
            name: name.to_owned(),
        })
        .await;
        Ok(api)
    }

    /// Removes an API: calls to it then get "unknown api".
    pub async fn delete_api(&self, service_id: &str, name: &str) -> Result<()> {
        self.store
            .delete_api(service_id, name)
            .await
            .map_err(|err| admin_store_error(&err, "api"))?;
        self.signal(Signal::Api {
            service_id: service_id.to_owned(),
            name: name.to_owned(),
        })
        .await;
        Ok(())
    }

    /// Grants an app units of a service.
    pub async fn create_package(&self, new: NewPackage) -> Result<Package> {
        if new.units <= 0 || new.units > 1_000_000_000_000 {
            return Err(invalid("units must be 1 to 10^12"));
        }
        let now_ms = self.now_ms();
        let expires_at_ms = new.expires_at.map(|seconds| seconds.saturating_mul(1000));
        if expires_at_ms.is_some_and(|at| at <= now_ms) {
            return Err(invalid("expires_at is in the past"));
        }
        self.get_app(&new.appid)
            .await
            .map_err(|_| invalid(format!("appid {} is not a registered app", new.appid)))?;
        self.get_service(&new.service_id)
            .await
            .map_err(|_| invalid(format!("service_id {} is not a registered service", new.service_id)))?;
        let package = Package {
            package_id: ids::new_package_id(),
            appid: new.appid,
            service_id: new.service_id,
            units: new.units,
            units_left: new.units,
            expires_at_ms,
            created_at_ms: now_ms,
        };
        self.store
            .insert_package(&package)
            .await
            .map_err(|err| admin_store_error(&err, "package"))?;
        Ok(package)
    }

    /// One package.
    pub async fn get_package(&self, package_id: &str) -> Result<Package> {
        let package = self
            .store
            .get_package(package_id)
            .await
            .map_err(|err| admin_store_error(&err, "package"))?;
        package.ok_or_else(|| Failure::new(Code::AdminNotFound, format!("package {package_id} not found")))
    }

    /// A page of packages.
    pub async fn list_packages(&self, filter: &PackageFilter) -> Result<Vec<Package>> {
        self.store
            .list_packages(filter)
            .await
            .map_err(|err| admin_store_error(&err, "package"))
    }

    /// A package's ledger, oldest first.
    pub async fn package_ledger(&self, package_id: &str) -> Result<Vec<LedgerEntry>> {
        // The calls this node has answered show their commits ([`crate::settling`]).
        self.commits.settled_through_now().await;
        self.store
            .ledger(package_id)
            .await
            .map_err(|err| admin_store_error(&err, "package"))
    }

    /// Logged calls, newest first.
    pub async fn list_calls(&self, filter: &CallFilter) -> Result<Vec<CallRecord>> {
        self.store.list_calls(filter).await.map_err(|err| admin_store_error(&err, "call"))
    }

    /// Forgets cached tokens of an app's family (after an issue superseded them), on every node.
    pub(crate) async fn evict_tokens(&self, appid: &str, kind: TokenKind) {
        self.signal(Signal::tokens(appid, kind)).await;
    }
}

fn check_api_fields(api: &Api) -> Result<()> {
    check_http_url("upstream_url", &api.upstream_url)?;
    check_timeout(api.timeout_ms, api.mode)?;
    check_price(api.price)?;
    check_rate_limit(api.rate_limit.as_ref())?;
    if let Some(schema) = &api.schema {
        compile_schema(schema)?;
    }
    Ok(())
}
