//! The `cloud_apps` row as both backends read it, and its mapping to [`CloudApp`].

use souk_core::cloud::CloudApp;
use souk_core::store::StoreError;
use souk_types::sign::SignMethod;

/// Columns of `cloud_apps`, in table order.
pub(crate) const CLOUD_APP_COLUMNS: &str = "cloud_app_id, appid, app_key, secret, env, whitelist, sign_method, disabled, created_at_ms";

/// A row of `cloud_apps`.
#[derive(sqlx::FromRow)]
pub(crate) struct CloudAppRow {
    cloud_app_id: String,
    appid: String,
    app_key: String,
    secret: String,
    env: String,
    whitelist: String,
    sign_method: String,
    disabled: bool,
    created_at_ms: i64,
}

impl TryFrom<CloudAppRow> for CloudApp {
    type Error = StoreError;

    fn try_from(row: CloudAppRow) -> Result<Self, StoreError> {
        // A row souk cannot read is an error, never an empty whitelist or a default signature: either
        // would change where calls may go or how they are signed without anyone asking.
        let whitelist = serde_json::from_str(&row.whitelist)
            .map_err(|e| StoreError::Internal(format!("cloud_apps.whitelist of {} is not a JSON list: {e}", row.cloud_app_id)))?;
        let sign_method = SignMethod::parse(&row.sign_method)
            .ok_or_else(|| StoreError::Internal(format!("cloud_apps.sign_method of {} is {:?}", row.cloud_app_id, row.sign_method)))?;
        Ok(CloudApp {
            cloud_app_id: row.cloud_app_id,
            appid: row.appid,
            app_key: row.app_key,
            secret: row.secret,
            env: row.env,
            whitelist,
            sign_method,
            disabled: row.disabled,
            created_at_ms: row.created_at_ms,
        })
    }
}

/// The whitelist as the `whitelist` column keeps it (a JSON list).
pub(crate) fn whitelist_json(cloud_app: &CloudApp) -> Result<String, StoreError> {
    serde_json::to_string(&cloud_app.whitelist).map_err(|e| StoreError::Internal(format!("cannot encode JSON: {e}")))
}
