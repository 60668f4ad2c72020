//! Apps, services, APIs and packages, shared: every method is the same statement on both backends.

use souk_core::store::StoreError;

/// Expands [`Registry`](souk_core::store::Registry) for a backend store (common parameters: see
/// [`crate::shared`]).
///
/// Knob: `service_lock`, the row-lock clause `insert_api` appends to its check that the service
/// exists, so the check still holds when the API row goes in (`" FOR SHARE"` on PostgreSQL; `""` on
/// SQLite, whose `BEGIN IMMEDIATE` already keeps every other writer out).
macro_rules! impl_registry {
    (
        store: $store:ident,
        db: $db:ident,
        read: $read:ident,
        write: $write:ident,
        begin: $begin:ident,
        service_lock: $service_lock:literal $(,)?
    ) => {
        mod shared {
            use super::*;

            use async_trait::async_trait;
            use souk_core::model::{Api, App, Package, PackageFilter, Service};
            use souk_core::store::{Registry, StoreError};
            use sqlx::query::Query;
            use sqlx::{$db, Database, QueryBuilder};
            use $crate::rows::{self, ApiRow, AppRow, PackageRow, ServiceRow, API_COLUMNS, APP_COLUMNS, PACKAGE_COLUMNS, SERVICE_COLUMNS};
            use $crate::shared::registry::one_row;

            #[async_trait]
            impl Registry for $store {
                async fn insert_app(&self, app: &App) -> Result<(), StoreError> {
                    bind_app(
                        "INSERT INTO apps (appid, name, app_type, secret_hash, open_account, pages, theme_color, message_url, \
                         message_token, allowed_origins, rate_limit, disabled, created_at_ms) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                        app,
                    )?
                    .execute(&self.$write)
                    .await
                    .map_err(from_sqlx)?;
                    Ok(())
                }

                async fn get_app(&self, appid: &str) -> Result<Option<App>, StoreError> {
                    let row: Option<AppRow> = sqlx::query_as(&format!("SELECT {APP_COLUMNS} FROM apps WHERE appid = $1"))
                        .bind(appid)
                        .fetch_optional(&self.$read)
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
                    .fetch_all(&self.$read)
                    .await
                    .map_err(from_sqlx)?;
                    rows::map_all(rows)
                }

                async fn update_app(&self, app: &App) -> Result<(), StoreError> {
                    let done = bind_app(
                        "UPDATE apps SET name = $2, app_type = $3, secret_hash = $4, open_account = $5, pages = $6, \
                         theme_color = $7, message_url = $8, message_token = $9, allowed_origins = $10, rate_limit = $11, \
                         disabled = $12, created_at_ms = $13 WHERE appid = $1",
                        app,
                    )?
                    .execute(&self.$write)
                    .await
                    .map_err(from_sqlx)?;
                    one_row(done.rows_affected())
                }

                async fn insert_service(&self, service: &Service) -> Result<(), StoreError> {
                    bind_service(
                        "INSERT INTO services (service_id, name, secret, disabled, created_at_ms) VALUES ($1, $2, $3, $4, $5)",
                        service,
                    )
                    .execute(&self.$write)
                    .await
                    .map_err(from_sqlx)?;
                    Ok(())
                }

                async fn get_service(&self, service_id: &str) -> Result<Option<Service>, StoreError> {
                    let row: Option<ServiceRow> = sqlx::query_as(&format!("SELECT {SERVICE_COLUMNS} FROM services WHERE service_id = $1"))
                        .bind(service_id)
                        .fetch_optional(&self.$read)
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
                    .fetch_all(&self.$read)
                    .await
                    .map_err(from_sqlx)?;
                    Ok(rows.into_iter().map(Service::from).collect())
                }

                async fn update_service(&self, service: &Service) -> Result<(), StoreError> {
                    let done = bind_service(
                        "UPDATE services SET name = $2, secret = $3, disabled = $4, created_at_ms = $5 WHERE service_id = $1",
                        service,
                    )
                    .execute(&self.$write)
                    .await
                    .map_err(from_sqlx)?;
                    one_row(done.rows_affected())
                }

                async fn insert_api(&self, api: &Api) -> Result<(), StoreError> {
                    let insert = bind_api(
                        "INSERT INTO apis (service_id, name, upstream_url, mode, timeout_ms, schema, price, rate_limit, created_at_ms) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                        api,
                    )?;
                    let mut tx = self.$begin().await?;
                    let service = sqlx::query(concat!("SELECT 1 FROM services WHERE service_id = $1", $service_lock))
                        .bind(&api.service_id)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(from_sqlx)?;
                    if service.is_none() {
                        return Err(StoreError::NotFound);
                    }
                    insert.execute(&mut *tx).await.map_err(from_sqlx)?;
                    tx.commit().await.map_err(from_sqlx)
                }

                async fn get_api(&self, service_id: &str, name: &str) -> Result<Option<Api>, StoreError> {
                    let row: Option<ApiRow> =
                        sqlx::query_as(&format!("SELECT {API_COLUMNS} FROM apis WHERE service_id = $1 AND name = $2"))
                            .bind(service_id)
                            .bind(name)
                            .fetch_optional(&self.$read)
                            .await
                            .map_err(from_sqlx)?;
                    row.map(Api::try_from).transpose()
                }

                async fn list_apis(&self, service_id: &str) -> Result<Vec<Api>, StoreError> {
                    let rows: Vec<ApiRow> = sqlx::query_as(&format!("SELECT {API_COLUMNS} FROM apis WHERE service_id = $1 ORDER BY name"))
                        .bind(service_id)
                        .fetch_all(&self.$read)
                        .await
                        .map_err(from_sqlx)?;
                    rows::map_all(rows)
                }

                async fn update_api(&self, api: &Api) -> Result<(), StoreError> {
                    let done = bind_api(
                        "UPDATE apis SET upstream_url = $3, mode = $4, timeout_ms = $5, schema = $6, price = $7, rate_limit = $8, \
                         created_at_ms = $9 WHERE service_id = $1 AND name = $2",
                        api,
                    )?
                    .execute(&self.$write)
                    .await
                    .map_err(from_sqlx)?;
                    one_row(done.rows_affected())
                }

                async fn delete_api(&self, service_id: &str, name: &str) -> Result<(), StoreError> {
                    let done = sqlx::query("DELETE FROM apis WHERE service_id = $1 AND name = $2")
                        .bind(service_id)
                        .bind(name)
                        .execute(&self.$write)
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
                    .execute(&self.$write)
                    .await
                    .map_err(from_sqlx)?;
                    Ok(())
                }

                async fn get_package(&self, package_id: &str) -> Result<Option<Package>, StoreError> {
                    let row: Option<PackageRow> = sqlx::query_as(&format!("SELECT {PACKAGE_COLUMNS} FROM packages WHERE package_id = $1"))
                        .bind(package_id)
                        .fetch_optional(&self.$read)
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
                    let rows: Vec<PackageRow> = query.build_query_as().fetch_all(&self.$read).await.map_err(from_sqlx)?;
                    Ok(rows.into_iter().map(Package::from).collect())
                }
            }

            /// A statement on `app`'s columns bound as `$1`..`$13`, in table order.
            fn bind_app<'q>(sql: &'q str, app: &'q App) -> Result<Query<'q, $db, <$db as Database>::Arguments<'q>>, StoreError> {
                let (pages, origins, rate_limit) = rows::app_json(app)?;
                Ok(sqlx::query(sql)
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
                    .bind(app.created_at_ms))
            }

            /// A statement on `service`'s columns bound as `$1`..`$5`, in table order.
            fn bind_service<'q>(sql: &'q str, service: &'q Service) -> Query<'q, $db, <$db as Database>::Arguments<'q>> {
                sqlx::query(sql)
                    .bind(&service.service_id)
                    .bind(&service.name)
                    .bind(&service.secret)
                    .bind(service.disabled)
                    .bind(service.created_at_ms)
            }

            /// A statement on `api`'s columns bound as `$1`..`$9`, in table order.
            fn bind_api<'q>(sql: &'q str, api: &'q Api) -> Result<Query<'q, $db, <$db as Database>::Arguments<'q>>, StoreError> {
                let (timeout_ms, schema, rate_limit) = rows::api_columns(api)?;
                Ok(sqlx::query(sql)
                    .bind(&api.service_id)
                    .bind(&api.name)
                    .bind(&api.upstream_url)
                    .bind(api.mode.as_str())
                    .bind(timeout_ms)
                    .bind(schema)
                    .bind(api.price)
                    .bind(rate_limit)
                    .bind(api.created_at_ms))
            }
        }
    };
}

pub(crate) use impl_registry;

/// An update or delete of one row by key: `NotFound` when no row matched.
pub(crate) fn one_row(rows_affected: u64) -> Result<(), StoreError> {
    if rows_affected == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}
