//! Cloud apps (`cloud-gateway.md` §1): the operator registers an app's external service with a
//! whitelist of at most 20 origins; souk gives it a numeric `cloudAppId` (16 digits, like the
//! platform's ids), an `app_key` (8 digits) and a secret it signs requests with.

use std::sync::Arc;

use rand::Rng;
use souk_types::admin::{CloudAppPatch, CloudAppView, CloudAppWithSecret, NewCloudApp};
use souk_types::cloud::{normalize_origin, MAX_WHITELIST};
use souk_types::sign::SignMethod;
use souk_types::Code;

use super::CloudApp;
use crate::error::{Failure, Result};
use crate::ids;
use crate::signals::Signal;
use crate::souk::Souk;
use crate::store::StoreError;

/// The environment a cloud app sends as `env` unless told otherwise.
pub const DEFAULT_ENV: &str = "online";
const MAX_ENV_LEN: usize = 32;
/// Attempts at fresh ids before giving up (a clash of random ids is already rare).
const ID_ATTEMPTS: usize = 5;

fn invalid(detail: impl Into<String>) -> Failure {
    Failure::new(Code::AdminInvalidRequest, detail)
}

fn not_found(cloud_app_id: &str) -> Failure {
    Failure::new(Code::AdminNotFound, format!("cloud app {cloud_app_id} not found"))
}

fn internal(err: &StoreError) -> Failure {
    Failure::from_store(Code::SystemError, err)
}

/// A new `cloudAppId`: 16 digits, the first not 0 (so ids sort numerically as text).
fn new_cloud_app_id() -> String {
    rand::rng()
        .random_range(1_000_000_000_000_000_u64..10_000_000_000_000_000)
        .to_string()
}

/// A new `app_key`: 8 digits, as the platform's app keys.
fn new_app_key() -> String {
    rand::rng().random_range(10_000_000_u32..100_000_000).to_string()
}

/// Checks and normalises a whitelist: 1 to 20 origins `http(s)://host[:port]`, duplicates removed,
/// order kept.
pub fn check_whitelist(origins: &[String]) -> Result<Vec<String>> {
    if origins.is_empty() || origins.len() > MAX_WHITELIST {
        return Err(invalid(format!("whitelist must hold 1 to {MAX_WHITELIST} origins")));
    }
    let mut normalised: Vec<String> = Vec::with_capacity(origins.len());
    for origin in origins {
        let origin = normalize_origin(origin).ok_or_else(|| {
            invalid(format!(
                "whitelist entry {origin:?} is not an origin like https://example.com[:port] (no path, query or user info)"
            ))
        })?;
        if !normalised.contains(&origin) {
            normalised.push(origin);
        }
    }
    Ok(normalised)
}

fn check_env(env: &str) -> Result<()> {
    let ok = !env.is_empty() && env.len() <= MAX_ENV_LEN && env.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !ok {
        return Err(invalid(format!("env must be 1 to {MAX_ENV_LEN} characters of A-Z a-z 0-9 _ -")));
    }
    Ok(())
}

fn parse_sign_method(name: &str) -> Result<SignMethod> {
    SignMethod::parse(name).ok_or_else(|| invalid(format!("sign_method {name:?}: md5, hmac or hmac-sha256")))
}

impl CloudApp {
    /// The admin API's view (never the secret).
    pub fn view(&self) -> CloudAppView {
        CloudAppView {
            cloud_app_id: self.cloud_app_id.clone(),
            appid: self.appid.clone(),
            app_key: self.app_key.clone(),
            env: self.env.clone(),
            whitelist: self.whitelist.clone(),
            sign_method: self.sign_method.as_str().to_owned(),
            disabled: self.disabled,
            created_at: self.created_at_ms.div_euclid(1000),
        }
    }

    /// The view with the secret: only for the answers of creation and rotation.
    pub fn with_secret(&self) -> CloudAppWithSecret {
        CloudAppWithSecret {
            cloud_app: self.view(),
            secret: self.secret.clone(),
        }
    }
}

impl Souk {
    /// A cloud app, from the cache or the store (the gateway's hot path).
    pub async fn find_cloud_app(&self, cloud_app_id: &str) -> Result<Option<Arc<CloudApp>>, StoreError> {
        let now_ms = self.now_ms();
        let stamp = match self.cloud.cloud_apps.get(cloud_app_id, now_ms) {
            Ok(cached) => return Ok(cached),
            Err(stamp) => stamp,
        };
        let found = self.store.get_cloud_app(cloud_app_id).await?.map(Arc::new);
        self.cloud.cloud_apps.insert(cloud_app_id.to_owned(), found.clone(), now_ms, stamp);
        Ok(found)
    }

    /// `POST cloud-apps`: registers a cloud app of an existing app. The answer holds the secret (use
    /// [`CloudApp::with_secret`] to show it, once).
    pub async fn create_cloud_app(&self, new: NewCloudApp) -> Result<CloudApp> {
        self.get_app(&new.appid)
            .await
            .map_err(|_| invalid(format!("appid {} is not a registered app", new.appid)))?;
        let whitelist = check_whitelist(&new.whitelist)?;
        let env = new.env.unwrap_or_else(|| DEFAULT_ENV.to_owned());
        check_env(&env)?;
        let sign_method = new.sign_method.as_deref().map_or(Ok(SignMethod::Md5), parse_sign_method)?;
        let mut cloud_app = CloudApp {
            cloud_app_id: String::new(),
            appid: new.appid,
            app_key: String::new(),
            secret: ids::new_secret(),
            env,
            whitelist,
            sign_method,
            disabled: false,
            created_at_ms: self.now_ms(),
        };
        for _ in 0..ID_ATTEMPTS {
            cloud_app.cloud_app_id = new_cloud_app_id();
            cloud_app.app_key = new_app_key();
            match self.store.insert_cloud_app(&cloud_app).await {
                Ok(()) => {
                    self.signal(Signal::CloudApp {
                        cloud_app_id: cloud_app.cloud_app_id.clone(),
                    })
                    .await;
                    return Ok(cloud_app);
                }
                // A random id or key clashed with an existing one: draw again.
                Err(StoreError::AlreadyExists) => continue,
                Err(err) => return Err(internal(&err)),
            }
        }
        Err(Failure::new(Code::SystemError, "could not find a free cloud app id"))
    }

    /// One cloud app for the operator.
    pub async fn get_cloud_app(&self, cloud_app_id: &str) -> Result<CloudApp> {
        let found = self.store.get_cloud_app(cloud_app_id).await.map_err(|err| internal(&err))?;
        found.ok_or_else(|| not_found(cloud_app_id))
    }

    /// A page of cloud apps ordered by id, of one app when `appid` is given.
    pub async fn list_cloud_apps(&self, appid: Option<&str>, after: Option<&str>, limit: u32) -> Result<Vec<CloudApp>> {
        self.store.list_cloud_apps(appid, after, limit).await.map_err(|err| internal(&err))
    }

    /// `PATCH cloud-apps/{cloud_app_id}`: a new whitelist, environment or signing method, or
    /// (dis)abling. Takes effect at once in this process, within the cache time on other nodes.
    pub async fn update_cloud_app(&self, cloud_app_id: &str, patch: CloudAppPatch) -> Result<CloudApp> {
        let mut cloud_app = self.get_cloud_app(cloud_app_id).await?;
        if let Some(whitelist) = patch.whitelist {
            cloud_app.whitelist = check_whitelist(&whitelist)?;
        }
        if let Some(env) = patch.env {
            check_env(&env)?;
            cloud_app.env = env;
        }
        if let Some(sign_method) = patch.sign_method {
            cloud_app.sign_method = parse_sign_method(&sign_method)?;
        }
        if let Some(disabled) = patch.disabled {
            cloud_app.disabled = disabled;
        }
        self.save_cloud_app(&cloud_app).await?;
        Ok(cloud_app)
    }

    /// `POST cloud-apps/{cloud_app_id}/secret`: a new signing secret, used from the next call on.
    pub async fn rotate_cloud_app_secret(&self, cloud_app_id: &str) -> Result<CloudApp> {
        let mut cloud_app = self.get_cloud_app(cloud_app_id).await?;
        cloud_app.secret = ids::new_secret();
        self.save_cloud_app(&cloud_app).await?;
        Ok(cloud_app)
    }

    async fn save_cloud_app(&self, cloud_app: &CloudApp) -> Result<()> {
        self.store.update_cloud_app(cloud_app).await.map_err(|err| match err {
            StoreError::NotFound => not_found(&cloud_app.cloud_app_id),
            other => internal(&other),
        })?;
        self.signal(Signal::CloudApp {
            cloud_app_id: cloud_app.cloud_app_id.clone(),
        })
        .await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitelists_are_checked_and_normalised() {
        let list = |items: &[&str]| items.iter().map(|item| (*item).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            check_whitelist(&list(&["HTTPS://A.example:443/", "https://a.example", "http://b.example:8080"])).unwrap(),
            list(&["https://a.example", "http://b.example:8080"])
        );
        assert!(check_whitelist(&[]).is_err());
        let many: Vec<String> = (0..=MAX_WHITELIST).map(|idx| format!("https://h{idx}.example")).collect();
        assert!(check_whitelist(&many).is_err());
        assert!(check_whitelist(&many[..MAX_WHITELIST]).is_ok());
        for bad in [
            "example.com",
            "https://a.example/path",
            "https://a.example?x",
            "https://u@a.example",
            "ftp://a.example",
        ] {
            let err = check_whitelist(&list(&[bad])).unwrap_err();
            assert_eq!(err.code, Code::AdminInvalidRequest, "{bad}");
        }
    }

    #[test]
    fn ids_look_like_the_platform_ones() {
        let id = new_cloud_app_id();
        assert_eq!(id.len(), 16, "{id}");
        assert!(id.bytes().all(|b| b.is_ascii_digit()) && !id.starts_with('0'));
        let key = new_app_key();
        assert_eq!(key.len(), 8, "{key}");
        assert!(check_env("online").is_ok() && check_env("").is_err() && check_env("a b").is_err());
        assert!(parse_sign_method("hmac-sha256").is_ok() && parse_sign_method("sha1").is_err());
    }
}
