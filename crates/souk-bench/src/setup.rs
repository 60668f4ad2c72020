//! Setting souk up for the run through its admin API (with souk-sdk, as an operator would), and the
//! exact-charging check afterwards.

use std::net::SocketAddr;

use souk_sdk::types::admin::{ApiMode, NewApi, NewApp, NewPackage, NewService};
use souk_sdk::{AdminClient, SdkError, WechatClient};

/// The API the bench calls.
pub const API_NAME: &str = "Echo";

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

/// Registers an app, a service signed with `provider_secret`, the `Echo` API pointing at the
/// provider, a package of `units`, fetches a token, and makes one call to check the whole path.
pub async fn prepare(
    admin: &AdminClient,
    souk: SocketAddr,
    provider: SocketAddr,
    provider_secret: &str,
    units: i64,
) -> Result<Setup, String> {
    let step = |what: &'static str| move |err: SdkError| format!("{what}: {err}");
    let app = admin
        .create_app(&NewApp {
            name: "souk-bench".to_owned(),
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
                rate_limit: None,
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
