//! Apps, services, APIs and packages on SQLite.

use async_trait::async_trait;
use souk_core::model::{Api, App, Package, PackageFilter, Service};
use souk_core::store::{Registry, StoreError};
use sqlx::QueryBuilder;

use super::{from_sqlx, SqliteStore};
use crate::rows::{self, ApiRow, AppRow, PackageRow, ServiceRow, API_COLUMNS, APP_COLUMNS, PACKAGE_COLUMNS, SERVICE_COLUMNS};

fn one_row(rows_affected: u64) -> Result<(), StoreError> {
    if rows_affected == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

#[async_trait]
impl Registry for SqliteStore {
    async fn insert_app(&self, app: &App) -> Result<(), StoreError> {
        let (pages, origins, rate_limit) = rows::app_json(app)?;
        sqlx::query(
            "INSERT INTO apps (appid, name, app_type, secret_hash, open_account, pages, theme_color, message_url, \
             message_token, allowed_origins, rate_limit, disabled, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(&app.appid)
        .bind(&app.name)
        .bind(&app.app_type)
        .bind(&app.secret_hash)
        .bind(&app.open_account)
        .bind(pages)
        .bind(&app.theme_color)
        .bind(&app.message_url)
        .bind(&app.message_token)
        .bind(origins)
        .bind(rate_limit)
        .bind(app.disabled)
        .bind(app.created_at_ms)
        .execute(&self.writer)
        .await
        .map_err(from_sqlx)?;
        Ok(())
    }

    async fn get_app(&self, appid: &str) -> Result<Option<App>, StoreError> {
        let row: Option<AppRow> = sqlx::query_as(&format!("SELECT {APP_COLUMNS} FROM apps WHERE appid = $1"))
            .bind(appid)
            .fetch_optional(&self.reader)
            .await
            .map_err(from_sqlx)?;
        row.map(App::try_from).transpose()
    }

    async fn list_apps(&self, after: Option<&str>, limit: u32) -> Result<Vec<App>, StoreError> {
        let rows: Vec<AppRow> = sqlx::query_as(&format!(
            "SELECT {APP_COLUMNS} FROM apps WHERE ($1 IS NULL OR appid > $1) ORDER BY appid LIMIT $2"
        ))
        .bind(after)
        .bind(rows::limit(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(from_sqlx)?;
        rows::map_all(rows)
    }

    async fn update_app(&self, app: &App) -> Result<(), StoreError> {
        let (pages, origins, rate_limit) = rows::app_json(app)?;
        let done = sqlx::query(
            "UPDATE apps SET name = $2, app_type = $3, secret_hash = $4, open_account = $5, pages = $6, \
             theme_color = $7, message_url = $8, message_token = $9, allowed_origins = $10, rate_limit = $11, \
             disabled = $12, created_at_ms = $13 WHERE appid = $1",
        )
        .bind(&app.appid)
        .bind(&app.name)
        .bind(&app.app_type)
        .bind(&app.secret_hash)
        .bind(&app.open_account)
        .bind(pages)
        .bind(&app.theme_color)
        .bind(&app.message_url)
        .bind(&app.message_token)
        .bind(origins)
        .bind(rate_limit)
        .bind(app.disabled)
        .bind(app.created_at_ms)
        .execute(&self.writer)
        .await
        .map_err(from_sqlx)?;
        one_row(done.rows_affected())
    }

    async fn insert_service(&self, service: &Service) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO services (service_id, name, secret, disabled, created_at_ms) VALUES ($1, $2, $3, $4, $5)")
            .bind(&service.service_id)
            .bind(&service.name)
            .bind(&service.secret)
            .bind(service.disabled)
            .bind(service.created_at_ms)
            .execute(&self.writer)
            .await
            .map_err(from_sqlx)?;
        Ok(())
    }

    async fn get_service(&self, service_id: &str) -> Result<Option<Service>, StoreError> {
        let row: Option<ServiceRow> = sqlx::query_as(&format!("SELECT {SERVICE_COLUMNS} FROM services WHERE service_id = $1"))
            .bind(service_id)
            .fetch_optional(&self.reader)
            .await
            .map_err(from_sqlx)?;
        Ok(row.map(Service::from))
    }

    async fn list_services(&self, after: Option<&str>, limit: u32) -> Result<Vec<Service>, StoreError> {
        let rows: Vec<ServiceRow> = sqlx::query_as(&format!(
            "SELECT {SERVICE_COLUMNS} FROM services WHERE ($1 IS NULL OR service_id > $1) ORDER BY service_id LIMIT $2"
        ))
        .bind(after)
        .bind(rows::limit(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(from_sqlx)?;
        Ok(rows.into_iter().map(Service::from).collect())
    }

    async fn update_service(&self, service: &Service) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE services SET name = $2, secret = $3, disabled = $4, created_at_ms = $5 WHERE service_id = $1")
            .bind(&service.service_id)
            .bind(&service.name)
            .bind(&service.secret)
            .bind(service.disabled)
            .bind(service.created_at_ms)
            .execute(&self.writer)
            .await
            .map_err(from_sqlx)?;
        one_row(done.rows_affected())
    }

    async fn insert_api(&self, api: &Api) -> Result<(), StoreError> {
        let (timeout_ms, schema, rate_limit) = rows::api_columns(api)?;
        let mut tx = self.begin_write().await?;
        let service: Option<i64> = sqlx::query_scalar("SELECT 1 FROM services WHERE service_id = $1")
            .bind(&api.service_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(from_sqlx)?;
        if service.is_none() {
            return Err(StoreError::NotFound);
        }
        sqlx::query(
            "INSERT INTO apis (service_id, name, upstream_url, mode, timeout_ms, schema, price, rate_limit, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&api.service_id)
        .bind(&api.name)
        .bind(&api.upstream_url)
        .bind(api.mode.as_str())
        .bind(timeout_ms)
        .bind(schema)
        .bind(api.price)
        .bind(rate_limit)
        .bind(api.created_at_ms)
        .execute(&mut *tx)
        .await
        .map_err(from_sqlx)?;
        tx.commit().await.map_err(from_sqlx)
    }

    async fn get_api(&self, service_id: &str, name: &str) -> Result<Option<Api>, StoreError> {
        let row: Option<ApiRow> = sqlx::query_as(&format!("SELECT {API_COLUMNS} FROM apis WHERE service_id = $1 AND name = $2"))
            .bind(service_id)
            .bind(name)
            .fetch_optional(&self.reader)
            .await
            .map_err(from_sqlx)?;
        row.map(Api::try_from).transpose()
    }

    async fn list_apis(&self, service_id: &str) -> Result<Vec<Api>, StoreError> {
        let rows: Vec<ApiRow> = sqlx::query_as(&format!("SELECT {API_COLUMNS} FROM apis WHERE service_id = $1 ORDER BY name"))
            .bind(service_id)
            .fetch_all(&self.reader)
            .await
            .map_err(from_sqlx)?;
        rows::map_all(rows)
    }

    async fn update_api(&self, api: &Api) -> Result<(), StoreError> {
        let (timeout_ms, schema, rate_limit) = rows::api_columns(api)?;
        let done = sqlx::query(
            "UPDATE apis SET upstream_url = $3, mode = $4, timeout_ms = $5, schema = $6, price = $7, rate_limit = $8, \
             created_at_ms = $9 WHERE service_id = $1 AND name = $2",
        )
        .bind(&api.service_id)
        .bind(&api.name)
        .bind(&api.upstream_url)
        .bind(api.mode.as_str())
        .bind(timeout_ms)
        .bind(schema)
        .bind(api.price)
        .bind(rate_limit)
        .bind(api.created_at_ms)
        .execute(&self.writer)
        .await
        .map_err(from_sqlx)?;
        one_row(done.rows_affected())
    }

    async fn delete_api(&self, service_id: &str, name: &str) -> Result<(), StoreError> {
        let done = sqlx::query("DELETE FROM apis WHERE service_id = $1 AND name = $2")
            .bind(service_id)
            .bind(name)
            .execute(&self.writer)
            .await
            .map_err(from_sqlx)?;
        one_row(done.rows_affected())
    }

    async fn insert_package(&self, package: &Package) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO packages (package_id, appid, service_id, units, units_left, expires_at_ms, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&package.package_id)
        .bind(&package.appid)
        .bind(&package.service_id)
        .bind(package.units)
        .bind(package.units_left)
        .bind(package.expires_at_ms)
        .bind(package.created_at_ms)
        .execute(&self.writer)
        .await
        .map_err(from_sqlx)?;
        Ok(())
    }

    async fn get_package(&self, package_id: &str) -> Result<Option<Package>, StoreError> {
        let row: Option<PackageRow> = sqlx::query_as(&format!("SELECT {PACKAGE_COLUMNS} FROM packages WHERE package_id = $1"))
            .bind(package_id)
            .fetch_optional(&self.reader)
            .await
            .map_err(from_sqlx)?;
        Ok(row.map(Package::from))
    }

    async fn list_packages(&self, filter: &PackageFilter) -> Result<Vec<Package>, StoreError> {
        let mut query = QueryBuilder::new(format!("SELECT {PACKAGE_COLUMNS} FROM packages WHERE 1 = 1"));
        if let Some(appid) = &filter.appid {
            query.push(" AND appid = ").push_bind(appid);
        }
        if let Some(service_id) = &filter.service_id {
            query.push(" AND service_id = ").push_bind(service_id);
        }
        if let Some(after) = &filter.after {
            query.push(" AND package_id > ").push_bind(after);
        }
        query.push(" ORDER BY package_id LIMIT ").push_bind(rows::limit(filter.limit));
        let rows: Vec<PackageRow> = query.build_query_as().fetch_all(&self.reader).await.map_err(from_sqlx)?;
        Ok(rows.into_iter().map(Package::from).collect())
    }
}
