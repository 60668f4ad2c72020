//! Setting souk up for the run through its admin API (with souk-sdk, as an operator would), and the
//! exact-charging check afterwards.

use std::net::SocketAddr;

use souk_sdk::types::admin::{ApiMode, NewApi, NewApp, NewCloudApp, NewPackage, NewService, RateLimit};
use souk_sdk::{AdminClient, SdkError, WechatClient};

/// The API the bench calls.
pub const API_NAME: &str = "Echo";

/// Units in every package: more than any run can use, so no run ends on an empty package.
pub const UNITS: i64 = 1_000_000_000_000;

/// A rate limit that is checked on every call but never reached.
fn unreachable_limit() -> Option<RateLimit> {
    Some(RateLimit {
        per_second: 1e9,
        burst: 1_000_000_000,
    })
}

fn step(what: &'static str) -> impl Fn(SdkError) -> String {
    move |err: SdkError| format!("{what}: {err}")
}

/// What the setup made.
#[derive(Debug)]
pub struct Setup {
    /// The calling app.
    pub appid: String,
    /// The service, whose secret is the provider's.
    pub service_id: String,
    /// The package the calls are charged to.
    pub package_id: String,
    /// The app's access token.
    pub access_token: String,
}

/// Registers an app (with a rate limit), a service signed with `provider_secret`, the `Echo` API
/// pointing at the provider (with its own rate limit), a package of `units`, fetches a token, and
/// makes one call to check the whole path.
pub async fn prepare(
    admin: &AdminClient,
    souk: SocketAddr,
    provider: SocketAddr,
    provider_secret: &str,
    units: i64,
) -> Result<Setup, String> {
    let app = admin
        .create_app(&NewApp {
            name: "souk-bench".to_owned(),
            rate_limit: unreachable_limit(),
            ..NewApp::default()
        })
        .await
        .map_err(step("create the app"))?;
    let service = admin
        .create_service(&NewService {
            service_id: None,
            name: "souk-bench echo".to_owned(),
            secret: Some(provider_secret.to_owned()),
        })
        .await
        .map_err(step("create the service"))?;
    let service_id = service.service.service_id;
    admin
        .create_api(
            &service_id,
            &NewApi {
                name: API_NAME.to_owned(),
                upstream_url: format!("http://{provider}/echo"),
                mode: ApiMode::Sync,
                timeout_ms: Some(10_000),
                schema: None,
                price: Some(1),
                rate_limit: unreachable_limit(),
            },
        )
        .await
        .map_err(step("create the API"))?;
    let package = admin
        .create_package(&NewPackage {
            appid: app.app.appid.clone(),
            service_id: service_id.clone(),
            units,
            expires_at: None,
        })
        .await
        .map_err(step("create the package"))?;
    let wechat = WechatClient::new(&format!("http://{souk}")).map_err(step("souk's URL"))?;
    let token = wechat
        .get_token(&app.app.appid, &app.secret)
        .await
        .map_err(step("get an access token"))?;
    let answer = wechat
        .invoke_service(
            &token.access_token,
            &service_id,
            API_NAME,
            serde_json::json!({"n": -1}),
            Some("bench-smoke"),
        )
        .await
        .map_err(step("the first call through souk"))?;
    let echoed = answer.json().map_err(step("the first call's data"))?;
    if echoed.pointer("/echo/n") != Some(&serde_json::json!(-1)) {
        return Err(format!("the first call through souk did not echo its data: {echoed}"));
    }
    Ok(Setup {
        appid: app.app.appid,
        service_id,
        package_id: package.package_id,
        access_token: token.access_token,
    })
}

/// Units charged to the package so far (bought minus left).
pub async fn units_charged(admin: &AdminClient, package_id: &str) -> Result<i64, String> {
    let package = admin
        .get_package(package_id)
        .await
        .map_err(|err| format!("read the package: {err}"))?;
    Ok(package.units - package.units_left)
}

/// 100 apps (each with a package and a token) calling 100 APIs of one service.
#[derive(Debug)]
pub struct Wide {
    /// The service.
    pub service_id: String,
    /// Its APIs.
    pub apis: Vec<String>,
    /// One token per app.
    pub tokens: Vec<String>,
    /// One package per app.
    pub package_ids: Vec<String>,
}

/// Registers `apps` apps with packages and `apis` APIs (all to the provider) on a new service.
pub async fn prepare_wide(
    admin: &AdminClient,
    souk: SocketAddr,
    provider: SocketAddr,
    provider_secret: &str,
    apps: usize,
    apis: usize,
) -> Result<Wide, String> {
    let service = admin
        .create_service(&NewService {
            service_id: None,
            name: "souk-bench wide".to_owned(),
            secret: Some(provider_secret.to_owned()),
        })
        .await
        .map_err(step("create the wide service"))?;
    let service_id = service.service.service_id;
    let mut names = Vec::with_capacity(apis);
    for i in 0..apis {
        let name = format!("Echo{i}");
        admin
            .create_api(
                &service_id,
                &NewApi {
                    name: name.clone(),
                    upstream_url: format!("http://{provider}/echo"),
                    mode: ApiMode::Sync,
                    timeout_ms: Some(10_000),
                    schema: None,
                    price: Some(1),
                    rate_limit: unreachable_limit(),
                },
            )
            .await
            .map_err(step("create a wide API"))?;
        names.push(name);
    }
    let wechat = WechatClient::new(&format!("http://{souk}")).map_err(step("souk's URL"))?;
    let mut tokens = Vec::with_capacity(apps);
    let mut package_ids = Vec::with_capacity(apps);
    for i in 0..apps {
        let app = admin
            .create_app(&NewApp {
                name: format!("souk-bench wide {i}"),
                rate_limit: unreachable_limit(),
                ..NewApp::default()
            })
            .await
            .map_err(step("create a wide app"))?;
        let package = admin
            .create_package(&NewPackage {
                appid: app.app.appid.clone(),
                service_id: service_id.clone(),
                units: UNITS,
                expires_at: None,
            })
            .await
            .map_err(step("create a wide package"))?;
        let token = wechat
            .get_token(&app.app.appid, &app.secret)
            .await
            .map_err(step("get a wide app's token"))?;
        tokens.push(token.access_token);
        package_ids.push(package.package_id);
    }
    Ok(Wide {
        service_id,
        apis: names,
        tokens,
        package_ids,
    })
}

/// `count` apps for the token scenario: their appids and secrets.
pub async fn prepare_token_apps(admin: &AdminClient, count: usize) -> Result<Vec<(String, String)>, String> {
    let mut apps = Vec::with_capacity(count);
    for i in 0..count {
        let app = admin
            .create_app(&NewApp {
                name: format!("souk-bench token {i}"),
                ..NewApp::default()
            })
            .await
            .map_err(step("create a token app"))?;
        apps.push((app.app.appid, app.secret));
    }
    Ok(apps)
}

/// The async scenario's app token, service and API (async mode, priced, with a package).
#[derive(Debug)]
pub struct AsyncSetup {
    /// The app's token.
    pub access_token: String,
    /// The service.
    pub service_id: String,
    /// The API.
    pub api: String,
}

/// Registers an app, a service with an async API to the provider and a package.
pub async fn prepare_async(
    admin: &AdminClient,
    souk: SocketAddr,
    provider: SocketAddr,
    provider_secret: &str,
) -> Result<AsyncSetup, String> {
    let app = admin
        .create_app(&NewApp {
            name: "souk-bench async".to_owned(),
            ..NewApp::default()
        })
        .await
        .map_err(step("create the async app"))?;
    let service = admin
        .create_service(&NewService {
            service_id: None,
            name: "souk-bench async".to_owned(),
            secret: Some(provider_secret.to_owned()),
        })
        .await
        .map_err(step("create the async service"))?;
    let service_id = service.service.service_id;
    let api = "EchoAsync".to_owned();
    admin
        .create_api(
            &service_id,
            &NewApi {
                name: api.clone(),
                upstream_url: format!("http://{provider}/echo"),
                mode: ApiMode::Async,
                timeout_ms: Some(10_000),
                schema: None,
                price: Some(1),
                rate_limit: None,
            },
        )
        .await
        .map_err(step("create the async API"))?;
    admin
        .create_package(&NewPackage {
            appid: app.app.appid.clone(),
            service_id: service_id.clone(),
            units: UNITS,
            expires_at: None,
        })
        .await
        .map_err(step("create the async package"))?;
    let wechat = WechatClient::new(&format!("http://{souk}")).map_err(step("souk's URL"))?;
    let token = wechat
        .get_token(&app.app.appid, &app.secret)
        .await
        .map_err(step("get the async app's token"))?;
    Ok(AsyncSetup {
        access_token: token.access_token,
        service_id,
        api,
    })
}

/// The cloud scenario's app token and cloud app.
#[derive(Debug)]
pub struct CloudSetup {
    /// The app's token.
    pub access_token: String,
    /// The cloud app whose whitelist holds the upstream.
    pub cloud_app_id: String,
}

/// Registers an app and a cloud app whose whitelist is `http://<upstream>`.
pub async fn prepare_cloud(admin: &AdminClient, souk: SocketAddr, upstream: SocketAddr) -> Result<CloudSetup, String> {
    let app = admin
        .create_app(&NewApp {
            name: "souk-bench cloud".to_owned(),
            ..NewApp::default()
        })
        .await
        .map_err(step("create the cloud scenario's app"))?;
    let cloud_app = admin
        .create_cloud_app(&NewCloudApp {
            appid: app.app.appid.clone(),
            whitelist: vec![format!("http://{upstream}")],
            env: None,
            sign_method: None,
        })
        .await
        .map_err(step("create the cloud app"))?;
    let wechat = WechatClient::new(&format!("http://{souk}")).map_err(step("souk's URL"))?;
    let token = wechat
        .get_token(&app.app.appid, &app.secret)
        .await
        .map_err(step("get the cloud app's token"))?;
    Ok(CloudSetup {
        access_token: token.access_token,
        cloud_app_id: cloud_app.cloud_app.cloud_app_id,
    })
}
