//! Cloud apps, shared: single-statement reads and writes, no transaction needed, identical on both
//! backends.

/// Expands [`CloudApps`](souk_core::store::cloud::CloudApps) for a backend store (parameters: see
/// [`crate::shared`]). No hooks: nothing here differs between the backends.
macro_rules! impl_cloud_apps {
    (store: $store:ident, read: $read:ident, write: $write:ident $(,)?) => {
        mod shared {
            use super::*;

            use async_trait::async_trait;
            use souk_core::cloud::CloudApp;
            use souk_core::store::cloud::CloudApps;
            use souk_core::store::StoreError;
            use $crate::cloud_rows::{whitelist_json, CloudAppRow, CLOUD_APP_COLUMNS};

            #[async_trait]
            impl CloudApps for $store {
                async fn insert_cloud_app(&self, cloud_app: &CloudApp) -> Result<(), StoreError> {
                    sqlx::query(&format!(
                        "INSERT INTO cloud_apps ({CLOUD_APP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                    ))
                    .bind(&cloud_app.cloud_app_id)
                    .bind(&cloud_app.appid)
                    .bind(&cloud_app.app_key)
                    .bind(&cloud_app.secret)
                    .bind(&cloud_app.env)
                    .bind(whitelist_json(cloud_app)?)
                    .bind(cloud_app.sign_method.as_str())
                    .bind(cloud_app.disabled)
                    .bind(cloud_app.created_at_ms)
                    .execute(&self.$write)
                    .await
                    .map_err(from_sqlx)?;
                    Ok(())
                }

                async fn get_cloud_app(&self, cloud_app_id: &str) -> Result<Option<CloudApp>, StoreError> {
                    let row: Option<CloudAppRow> =
                        sqlx::query_as(&format!("SELECT {CLOUD_APP_COLUMNS} FROM cloud_apps WHERE cloud_app_id = $1"))
                            .bind(cloud_app_id)
                            .fetch_optional(&self.$read)
                            .await
                            .map_err(from_sqlx)?;
                    row.map(CloudApp::try_from).transpose()
                }

                async fn list_cloud_apps(&self, appid: Option<&str>, after: Option<&str>, limit: u32) -> Result<Vec<CloudApp>, StoreError> {
                    let rows: Vec<CloudAppRow> = sqlx::query_as(&format!(
                        "SELECT {CLOUD_APP_COLUMNS} FROM cloud_apps \
                         WHERE ($1 IS NULL OR appid = $1) AND ($2 IS NULL OR cloud_app_id > $2) \
                         ORDER BY cloud_app_id LIMIT $3"
                    ))
                    .bind(appid)
                    .bind(after)
                    .bind(i64::from(limit))
                    .fetch_all(&self.$read)
                    .await
                    .map_err(from_sqlx)?;
                    rows.into_iter().map(CloudApp::try_from).collect()
                }

                async fn update_cloud_app(&self, cloud_app: &CloudApp) -> Result<(), StoreError> {
                    let done = sqlx::query(
                        "UPDATE cloud_apps SET app_key = $2, secret = $3, env = $4, whitelist = $5, sign_method = $6, \
                         disabled = $7 WHERE cloud_app_id = $1",
                    )
                    .bind(&cloud_app.cloud_app_id)
                    .bind(&cloud_app.app_key)
                    .bind(&cloud_app.secret)
                    .bind(&cloud_app.env)
                    .bind(whitelist_json(cloud_app)?)
                    .bind(cloud_app.sign_method.as_str())
                    .bind(cloud_app.disabled)
                    .execute(&self.$write)
                    .await
                    .map_err(from_sqlx)?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::NotFound);
                    }
                    Ok(())
                }
            }
        }
    };
}

pub(crate) use impl_cloud_apps;
