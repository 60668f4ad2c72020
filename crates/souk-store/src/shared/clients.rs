//! End users, client sessions and grants, shared: get-or-create is `INSERT ... ON CONFLICT DO NOTHING`
//! then a read of the row, in one transaction (a racing insert of the same key waits for the first
//! to commit or roll back, so both read the same row).

/// Expands [`Clients`](souk_core::store::clients::Clients) for a backend store (common parameters:
/// see [`crate::shared`]).
///
/// Knob: `user_lock`, the row-lock clause `update_user` appends to its read of the user it then
/// rewrites, so concurrent updates do not lose each other's scopes (`" FOR UPDATE"` on PostgreSQL;
/// `""` on SQLite, whose `BEGIN IMMEDIATE` already keeps every other writer out).
macro_rules! impl_clients {
    (
        store: $store:ident,
        read: $read:ident,
        write: $write:ident,
        begin: $begin:ident,
        user_lock: $user_lock:literal $(,)?
    ) => {
        mod shared {
            use super::*;

            use async_trait::async_trait;
            use souk_core::store::clients::{ClientSession, Clients, EndUser, Grant};
            use souk_core::store::StoreError;
            use $crate::client_rows::{merge_scopes, EndUserRow, GrantRow, SessionRow, END_USER_COLUMNS, SESSION_COLUMNS};

            #[async_trait]
            impl Clients for $store {
                async fn get_or_create_user(&self, new: &EndUser) -> Result<EndUser, StoreError> {
                    let mut tx = self.$begin().await?;
                    sqlx::query(&format!(
                        "INSERT INTO end_users ({END_USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (appid, user_id) DO NOTHING"
                    ))
                    .bind(&new.appid)
                    .bind(&new.user)
                    .bind(&new.openid)
                    .bind(&new.nick)
                    .bind(serde_json::to_string(&new.scopes).unwrap_or_else(|_| "[]".into()))
                    .bind(new.created_at_ms)
                    .execute(&mut *tx)
                    .await
                    .map_err(from_sqlx)?;
                    let row: EndUserRow = sqlx::query_as(&format!(
                        "SELECT {END_USER_COLUMNS} FROM end_users WHERE appid = $1 AND user_id = $2"
                    ))
                    .bind(&new.appid)
                    .bind(&new.user)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(from_sqlx)?;
                    tx.commit().await.map_err(from_sqlx)?;
                    Ok(row.into())
                }

                async fn find_user(&self, appid: &str, openid: &str) -> Result<Option<EndUser>, StoreError> {
                    let row: Option<EndUserRow> = sqlx::query_as(&format!(
                        "SELECT {END_USER_COLUMNS} FROM end_users WHERE appid = $1 AND openid = $2"
                    ))
                    .bind(appid)
                    .bind(openid)
                    .fetch_optional(&self.$read)
                    .await
                    .map_err(from_sqlx)?;
                    Ok(row.map(EndUser::from))
                }

                async fn update_user(&self, appid: &str, openid: &str, nick: Option<&str>, add_scopes: &[String]) -> Result<EndUser, StoreError> {
                    let mut tx = self.$begin().await?;
                    let row: Option<EndUserRow> = sqlx::query_as(&format!(
                        "SELECT {END_USER_COLUMNS} FROM end_users WHERE appid = $1 AND openid = $2{user_lock}",
                        user_lock = $user_lock
                    ))
                    .bind(appid)
                    .bind(openid)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(from_sqlx)?;
                    let mut user: EndUser = row.ok_or(StoreError::NotFound)?.into();
                    if let Some(nick) = nick {
                        user.nick = Some(nick.to_owned());
                    }
                    user.scopes = merge_scopes(&user.scopes, add_scopes);
                    sqlx::query("UPDATE end_users SET nick = $3, scopes = $4 WHERE appid = $1 AND openid = $2")
                        .bind(appid)
                        .bind(openid)
                        .bind(&user.nick)
                        .bind(serde_json::to_string(&user.scopes).unwrap_or_else(|_| "[]".into()))
                        .execute(&mut *tx)
                        .await
                        .map_err(from_sqlx)?;
                    tx.commit().await.map_err(from_sqlx)?;
                    Ok(user)
                }

                async fn get_or_create_unionid(&self, open_account: &str, user: &str, new_unionid: &str) -> Result<String, StoreError> {
                    let mut tx = self.$begin().await?;
                    sqlx::query(
                        "INSERT INTO unionids (open_account, user_id, unionid) VALUES ($1, $2, $3) ON CONFLICT (open_account, user_id) DO NOTHING",
                    )
                    .bind(open_account)
                    .bind(user)
                    .bind(new_unionid)
                    .execute(&mut *tx)
                    .await
                    .map_err(from_sqlx)?;
                    let unionid: String = sqlx::query_scalar("SELECT unionid FROM unionids WHERE open_account = $1 AND user_id = $2")
                        .bind(open_account)
                        .bind(user)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(from_sqlx)?;
                    tx.commit().await.map_err(from_sqlx)?;
                    Ok(unionid)
                }

                async fn insert_session(&self, session: &ClientSession) -> Result<(), StoreError> {
                    sqlx::query(&format!(
                        "INSERT INTO client_sessions ({SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
                    ))
                    .bind(&session.session_hash)
                    .bind(&session.appid)
                    .bind(&session.openid)
                    .bind(&session.user)
                    .bind(&session.plugin_appid)
                    .bind(session.created_at_ms)
                    .bind(session.expires_at_ms)
                    .execute(&self.$write)
                    .await
                    .map_err(from_sqlx)?;
                    Ok(())
                }

                async fn find_session(&self, session_hash: &str) -> Result<Option<ClientSession>, StoreError> {
                    let row: Option<SessionRow> = sqlx::query_as(&format!("SELECT {SESSION_COLUMNS} FROM client_sessions WHERE session_hash = $1"))
                        .bind(session_hash)
                        .fetch_optional(&self.$read)
                        .await
                        .map_err(from_sqlx)?;
                    Ok(row.map(ClientSession::from))
                }

                async fn revoke_sessions(&self, appid: &str) -> Result<u64, StoreError> {
                    let done = sqlx::query("DELETE FROM client_sessions WHERE appid = $1")
                        .bind(appid)
                        .execute(&self.$write)
                        .await
                        .map_err(from_sqlx)?;
                    Ok(done.rows_affected())
                }

                async fn sweep_sessions(&self, before_ms: i64) -> Result<u64, StoreError> {
                    let done = sqlx::query("DELETE FROM client_sessions WHERE expires_at_ms < $1")
                        .bind(before_ms)
                        .execute(&self.$write)
                        .await
                        .map_err(from_sqlx)?;
                    Ok(done.rows_affected())
                }

                async fn insert_grant(&self, grant: &Grant) -> Result<(), StoreError> {
                    sqlx::query("INSERT INTO grants (payer_appid, caller_appid, created_at_ms) VALUES ($1, $2, $3)")
                        .bind(&grant.payer_appid)
                        .bind(&grant.caller_appid)
                        .bind(grant.created_at_ms)
                        .execute(&self.$write)
                        .await
                        .map_err(from_sqlx)?;
                    Ok(())
                }

                async fn delete_grant(&self, payer_appid: &str, caller_appid: &str) -> Result<(), StoreError> {
                    let done = sqlx::query("DELETE FROM grants WHERE payer_appid = $1 AND caller_appid = $2")
                        .bind(payer_appid)
                        .bind(caller_appid)
                        .execute(&self.$write)
                        .await
                        .map_err(from_sqlx)?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::NotFound);
                    }
                    Ok(())
                }

                async fn has_grant(&self, payer_appid: &str, caller_appid: &str) -> Result<bool, StoreError> {
                    let found: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM grants WHERE payer_appid = $1 AND caller_appid = $2")
                        .bind(payer_appid)
                        .bind(caller_appid)
                        .fetch_one(&self.$read)
                        .await
                        .map_err(from_sqlx)?;
                    Ok(found > 0)
                }

                async fn list_grants(&self, payer_appid: Option<&str>, caller_appid: Option<&str>) -> Result<Vec<Grant>, StoreError> {
                    let rows: Vec<GrantRow> = sqlx::query_as(
                        "SELECT payer_appid, caller_appid, created_at_ms FROM grants \
                         WHERE ($1 IS NULL OR payer_appid = $1) AND ($2 IS NULL OR caller_appid = $2) ORDER BY payer_appid, caller_appid",
                    )
                    .bind(payer_appid)
                    .bind(caller_appid)
                    .fetch_all(&self.$read)
                    .await
                    .map_err(from_sqlx)?;
                    Ok(rows.into_iter().map(Grant::from).collect())
                }
            }
        }
    };
}

pub(crate) use impl_clients;
