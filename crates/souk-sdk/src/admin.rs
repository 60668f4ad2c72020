//! [`AdminClient`]: typed calls to souk's admin API (`/souk/v1/admin/`, `wire.md` §6).
//!
//! Every method is one HTTP call. Bodies are JSON, errors are honest HTTP statuses with
//! `{errCode, errMsg, requestID}`, which become [`SdkError::Api`].

use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;
use souk_types::admin::{
    ApiPatch, ApiView, AppPatch, AppView, AppWithSecret, CallView, CloudAppPatch, CloudAppView, CloudAppWithSecret, GrantView, JobView,
    LedgerEntryView, List, NewApi, NewApp, NewCloudApp, NewGrant, NewPackage, NewPayment, NewService, PackageView, PaymentView,
    ServicePatch, ServiceView, ServiceWithSecret,
};

use crate::error::api_error;
use crate::url::{endpoint, parse_base};
use crate::SdkError;

/// The path under the base URL that every admin endpoint lives below.
const ADMIN_PREFIX: [&str; 3] = ["souk", "v1", "admin"];

/// Filters of `GET calls`; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallQuery {
    /// Only calls of this app.
    pub appid: Option<String>,
    /// Only calls to this service.
    pub service_id: Option<String>,
    /// Only calls to this API.
    pub api: Option<String>,
    /// Only calls that answered this errcode (0: successes).
    pub errcode: Option<i64>,
    /// Only the call with this request id.
    pub request_id: Option<String>,
    /// Only calls at or after this time, in Unix seconds.
    pub since: Option<i64>,
    /// At most this many calls per page.
    pub limit: Option<u32>,
    /// The `next` of the previous page.
    pub cursor: Option<String>,
}

impl CallQuery {
    fn to_pairs(&self) -> [(&'static str, Option<String>); 8] {
        [
            ("appid", self.appid.clone()),
            ("service_id", self.service_id.clone()),
            ("api", self.api.clone()),
            ("errcode", self.errcode.map(|code| code.to_string())),
            ("request_id", self.request_id.clone()),
            ("since", self.since.map(|since| since.to_string())),
            ("limit", self.limit.map(|limit| limit.to_string())),
            ("cursor", self.cursor.clone()),
        ]
    }
}

/// Filters of `GET jobs`; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobQuery {
    /// Only jobs of this app.
    pub appid: Option<String>,
    /// Only jobs in this state (`pending`, `waiting`, `succeeded`, `failed`).
    pub state: Option<String>,
    /// At most this many jobs per page.
    pub limit: Option<u32>,
    /// The `next` of the previous page.
    pub cursor: Option<String>,
}

/// A client of souk's admin API, authenticated with the admin token.
#[derive(Debug, Clone)]
pub struct AdminClient {
    http: reqwest::Client,
    base: Url,
    authorization: String,
}

impl AdminClient {
    /// A client for the souk at `base_url` (like `http://127.0.0.1:8080`), using `admin_token`.
    pub fn new(base_url: &str, admin_token: &str) -> Result<Self, SdkError> {
        Self::with_http_client(reqwest::Client::new(), base_url, admin_token)
    }

    /// Like [`AdminClient::new`], with a `reqwest::Client` configured by the caller (timeouts, proxy).
    pub fn with_http_client(http: reqwest::Client, base_url: &str, admin_token: &str) -> Result<Self, SdkError> {
        Ok(AdminClient {
            http,
            base: parse_base(base_url)?,
            authorization: format!("Bearer {admin_token}"),
        })
    }

    /// The URL of an admin endpoint; public so tools can print what they call.
    pub fn url(&self, segments: &[&str], query: &[(&str, Option<String>)]) -> Url {
        let full: Vec<&str> = ADMIN_PREFIX.iter().copied().chain(segments.iter().copied()).collect();
        endpoint(&self.base, &full, query)
    }

    // ---- apps ----

    /// `POST apps`: registers an app; the answer holds its secret, shown only this once.
    pub async fn create_app(&self, app: &NewApp) -> Result<AppWithSecret, SdkError> {
        self.call(Method::POST, &["apps"], &[], Some(app)).await
    }

    /// `GET apps`: one page of apps.
    pub async fn list_apps(&self, cursor: Option<&str>) -> Result<List<AppView>, SdkError> {
        self.get(&["apps"], &[("cursor", cursor.map(str::to_owned))]).await
    }

    /// `GET apps/{appid}`.
    pub async fn get_app(&self, appid: &str) -> Result<AppView, SdkError> {
        self.get(&["apps", appid], &[]).await
    }

    /// `PATCH apps/{appid}`: changes the fields that are set in `patch` (disable with `disabled`).
    pub async fn patch_app(&self, appid: &str, patch: &AppPatch) -> Result<AppView, SdkError> {
        self.call(Method::PATCH, &["apps", appid], &[], Some(patch)).await
    }

    /// `POST apps/{appid}/secret`: a new secret; the old one stops working.
    pub async fn rotate_secret(&self, appid: &str) -> Result<AppWithSecret, SdkError> {
        self.call(Method::POST, &["apps", appid, "secret"], &[], None::<&()>).await
    }

    // ---- services ----

    /// `POST services`: registers a provider's service; the answer holds its signing secret.
    pub async fn create_service(&self, service: &NewService) -> Result<ServiceWithSecret, SdkError> {
        self.call(Method::POST, &["services"], &[], Some(service)).await
    }

    /// `GET services`: one page of services.
    pub async fn list_services(&self, cursor: Option<&str>) -> Result<List<ServiceView>, SdkError> {
        self.get(&["services"], &[("cursor", cursor.map(str::to_owned))]).await
    }

    /// `GET services/{service_id}`.
    pub async fn get_service(&self, service_id: &str) -> Result<ServiceView, SdkError> {
        self.get(&["services", service_id], &[]).await
    }

    /// `PATCH services/{service_id}`.
    pub async fn patch_service(&self, service_id: &str, patch: &ServicePatch) -> Result<ServiceView, SdkError> {
        self.call(Method::PATCH, &["services", service_id], &[], Some(patch)).await
    }

    // ---- apis ----

    /// `POST services/{service_id}/apis`.
    pub async fn create_api(&self, service_id: &str, api: &NewApi) -> Result<ApiView, SdkError> {
        self.call(Method::POST, &["services", service_id, "apis"], &[], Some(api)).await
    }

    /// `GET services/{service_id}/apis`: the first page of the service's APIs.
    pub async fn list_apis(&self, service_id: &str) -> Result<List<ApiView>, SdkError> {
        self.list_apis_page(service_id, None).await
    }

    /// `GET services/{service_id}/apis?cursor=`: any page of the service's APIs.
    pub async fn list_apis_page(&self, service_id: &str, cursor: Option<&str>) -> Result<List<ApiView>, SdkError> {
        self.get(&["services", service_id, "apis"], &[("cursor", cursor.map(str::to_owned))])
            .await
    }

    /// `GET services/{service_id}/apis/{name}`.
    pub async fn get_api(&self, service_id: &str, name: &str) -> Result<ApiView, SdkError> {
        self.get(&["services", service_id, "apis", name], &[]).await
    }

    /// `PATCH services/{service_id}/apis/{name}`.
    pub async fn patch_api(&self, service_id: &str, name: &str, patch: &ApiPatch) -> Result<ApiView, SdkError> {
        self.call(Method::PATCH, &["services", service_id, "apis", name], &[], Some(patch))
            .await
    }

    /// `DELETE services/{service_id}/apis/{name}`.
    pub async fn delete_api(&self, service_id: &str, name: &str) -> Result<(), SdkError> {
        let url = self.url(&["services", service_id, "apis", name], &[]);
        self.send(Method::DELETE, url, None).await.map(drop)
    }

    // ---- packages ----

    /// `POST packages`: gives an app units to spend on a service.
    pub async fn create_package(&self, package: &NewPackage) -> Result<PackageView, SdkError> {
        self.call(Method::POST, &["packages"], &[], Some(package)).await
    }

    /// `GET packages?appid=&service_id=&cursor=`: one page of packages, filtered by what is given.
    pub async fn list_packages(
        &self,
        appid: Option<&str>,
        service_id: Option<&str>,
        cursor: Option<&str>,
    ) -> Result<List<PackageView>, SdkError> {
        let query = [
            ("appid", appid.map(str::to_owned)),
            ("service_id", service_id.map(str::to_owned)),
            ("cursor", cursor.map(str::to_owned)),
        ];
        self.get(&["packages"], &query).await
    }

    /// `GET packages/{package_id}`.
    pub async fn get_package(&self, package_id: &str) -> Result<PackageView, SdkError> {
        self.get(&["packages", package_id], &[]).await
    }

    /// `GET packages/{package_id}/ledger`: the first page of the package's ledger.
    pub async fn ledger(&self, package_id: &str) -> Result<List<LedgerEntryView>, SdkError> {
        self.ledger_page(package_id, None).await
    }

    /// `GET packages/{package_id}/ledger?cursor=`: any page of the package's ledger.
    pub async fn ledger_page(&self, package_id: &str, cursor: Option<&str>) -> Result<List<LedgerEntryView>, SdkError> {
        self.get(&["packages", package_id, "ledger"], &[("cursor", cursor.map(str::to_owned))])
            .await
    }

    // ---- grants ----

    /// `POST grants`: lets `caller_appid` charge `payer_appid`'s packages (`consumeType: 2`).
    pub async fn create_grant(&self, grant: &NewGrant) -> Result<GrantView, SdkError> {
        self.call(Method::POST, &["grants"], &[], Some(grant)).await
    }

    /// `GET grants?payer_appid=&caller_appid=`.
    pub async fn list_grants(&self, payer_appid: Option<&str>, caller_appid: Option<&str>) -> Result<List<GrantView>, SdkError> {
        let query = [
            ("payer_appid", payer_appid.map(str::to_owned)),
            ("caller_appid", caller_appid.map(str::to_owned)),
        ];
        self.get(&["grants"], &query).await
    }

    /// `DELETE grants/{payer_appid}/{caller_appid}`.
    pub async fn delete_grant(&self, payer_appid: &str, caller_appid: &str) -> Result<(), SdkError> {
        let url = self.url(&["grants", payer_appid, caller_appid], &[]);
        self.send(Method::DELETE, url, None).await.map(drop)
    }

    // ---- payments ----

    /// `POST payments`: reports a payment a user made to an app (for getPaidUnionId). Reporting the
    /// same order again answers the first report.
    pub async fn create_payment(&self, payment: &NewPayment) -> Result<PaymentView, SdkError> {
        self.call(Method::POST, &["payments"], &[], Some(payment)).await
    }

    // ---- cloud apps ----

    /// `POST cloud-apps`: registers an external service of an app for the cloud gateway; the answer
    /// holds its signing secret, shown only this once.
    pub async fn create_cloud_app(&self, cloud_app: &NewCloudApp) -> Result<CloudAppWithSecret, SdkError> {
        self.call(Method::POST, &["cloud-apps"], &[], Some(cloud_app)).await
    }

    /// `GET cloud-apps?appid=&cursor=`: one page of cloud apps, of one app when `appid` is given.
    pub async fn list_cloud_apps(&self, appid: Option<&str>, cursor: Option<&str>) -> Result<List<CloudAppView>, SdkError> {
        let query = [("appid", appid.map(str::to_owned)), ("cursor", cursor.map(str::to_owned))];
        self.get(&["cloud-apps"], &query).await
    }

    /// `GET cloud-apps/{cloud_app_id}`.
    pub async fn get_cloud_app(&self, cloud_app_id: &str) -> Result<CloudAppView, SdkError> {
        self.get(&["cloud-apps", cloud_app_id], &[]).await
    }

    /// `PATCH cloud-apps/{cloud_app_id}`: changes the fields set in `patch` (disable with `disabled`).
    pub async fn patch_cloud_app(&self, cloud_app_id: &str, patch: &CloudAppPatch) -> Result<CloudAppView, SdkError> {
        self.call(Method::PATCH, &["cloud-apps", cloud_app_id], &[], Some(patch)).await
    }

    /// `POST cloud-apps/{cloud_app_id}/secret`: a new signing secret; the old one stops working.
    pub async fn rotate_cloud_app_secret(&self, cloud_app_id: &str) -> Result<CloudAppWithSecret, SdkError> {
        self.call(Method::POST, &["cloud-apps", cloud_app_id, "secret"], &[], None::<&()>)
            .await
    }

    // ---- calls ----

    /// `GET calls?...`: logged calls, newest first.
    pub async fn list_calls(&self, query: &CallQuery) -> Result<List<CallView>, SdkError> {
        self.get(&["calls"], &query.to_pairs()).await
    }

    // ---- jobs ----

    /// `GET jobs?appid=&state=&limit=&cursor=`: async jobs, newest first.
    pub async fn list_jobs(&self, query: &JobQuery) -> Result<List<JobView>, SdkError> {
        let pairs = [
            ("appid", query.appid.clone()),
            ("state", query.state.clone()),
            ("limit", query.limit.map(|limit| limit.to_string())),
            ("cursor", query.cursor.clone()),
        ];
        self.get(&["jobs"], &pairs).await
    }

    /// `GET jobs/{request_id}`.
    pub async fn get_job(&self, request_id: &str) -> Result<JobView, SdkError> {
        self.get(&["jobs", request_id], &[]).await
    }

    // ---- plumbing ----

    async fn get<T: DeserializeOwned>(&self, segments: &[&str], query: &[(&str, Option<String>)]) -> Result<T, SdkError> {
        self.call(Method::GET, segments, query, None::<&()>).await
    }

    /// One call with an optional JSON body, decoding a JSON answer.
    async fn call<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, Option<String>)],
        body: Option<&B>,
    ) -> Result<T, SdkError> {
        let body = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|err| SdkError::Decode(format!("cannot encode the request body: {err}")))?;
        let url = self.url(segments, query);
        let what = format!("{method} {}", url.path());
        let answer = self.send(method, url, body).await?;
        serde_json::from_slice(&answer).map_err(|err| SdkError::Decode(format!("{what}: {err}")))
    }

    /// Sends, and turns a non-2xx answer into [`SdkError::Api`]; the body of a 2xx answer is returned.
    async fn send(&self, method: Method, url: Url, body: Option<Vec<u8>>) -> Result<Vec<u8>, SdkError> {
        let mut request = self
            .http
            .request(method, url)
            .header(reqwest::header::AUTHORIZATION, &self.authorization);
        if let Some(body) = body {
            request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(body);
        }
        let response = request.send().await?;
        let status = response.status();
        let body = response.bytes().await?;
        if !status.is_success() {
            return Err(api_error(status.as_u16(), &body));
        }
        Ok(body.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> AdminClient {
        AdminClient::new("http://127.0.0.1:8080", "t").unwrap()
    }

    #[test]
    fn urls_live_under_the_admin_prefix() {
        let client = client();
        assert_eq!(
            client.url(&["services", "svc/1", "apis", "Echo Api"], &[]).as_str(),
            "http://127.0.0.1:8080/souk/v1/admin/services/svc%2F1/apis/Echo%20Api"
        );
        assert_eq!(
            client
                .url(
                    &["packages"],
                    &[("appid", Some("wx1".into())), ("service_id", None), ("cursor", Some("c 2".into()))]
                )
                .as_str(),
            "http://127.0.0.1:8080/souk/v1/admin/packages?appid=wx1&cursor=c+2"
        );
    }

    #[test]
    fn call_query_sends_only_what_is_set() {
        let query = CallQuery {
            appid: Some("wx1".into()),
            errcode: Some(0),
            since: Some(1_700_000_000),
            limit: Some(20),
            ..CallQuery::default()
        };
        assert_eq!(
            client().url(&["calls"], &query.to_pairs()).as_str(),
            "http://127.0.0.1:8080/souk/v1/admin/calls?appid=wx1&errcode=0&since=1700000000&limit=20"
        );
    }

    #[tokio::test]
    async fn unreachable_souk_is_a_transport_error() {
        // A port that was free a moment ago: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let client = AdminClient::new(&format!("http://127.0.0.1:{port}"), "t").unwrap();
        let err = client.get_app("wx1").await.unwrap_err();
        assert!(matches!(err, SdkError::Transport(_)), "{err:?}");
        assert!(err.to_string().starts_with("cannot reach souk: "), "{err}");
    }
}
