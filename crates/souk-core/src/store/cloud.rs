//! Cloud apps' durable records: the external services of apps that the cloud gateway calls
//! (`cloud-gateway.md` §1).

use async_trait::async_trait;

use super::StoreError;
use crate::cloud::CloudApp;

/// Cloud apps.
#[async_trait]
pub trait CloudApps: Send + Sync {
    /// Stores a cloud app; `AlreadyExists` if its `cloud_app_id` or its `app_key` is taken.
    async fn insert_cloud_app(&self, cloud_app: &CloudApp) -> Result<(), StoreError>;
    /// One cloud app by id.
    async fn get_cloud_app(&self, cloud_app_id: &str) -> Result<Option<CloudApp>, StoreError>;
    /// Cloud apps ordered by id, after the cursor, of one app when `appid` is given.
    async fn list_cloud_apps(&self, appid: Option<&str>, after: Option<&str>, limit: u32) -> Result<Vec<CloudApp>, StoreError>;
    /// Replaces every field of an existing cloud app but its id, app and creation time; `NotFound` if
    /// there is none.
    async fn update_cloud_app(&self, cloud_app: &CloudApp) -> Result<(), StoreError>;
}
