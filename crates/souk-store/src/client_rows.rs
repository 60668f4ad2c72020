//! Rows of the client tables (`end_users`, `client_sessions`, `grants`), shared by both backends.

use souk_core::store::clients::{ClientSession, EndUser, Grant};

/// Columns of `end_users`, in insert order.
pub(crate) const END_USER_COLUMNS: &str = "appid, user_id, openid, nick, scopes, created_at_ms";
/// Columns of `client_sessions`, in insert order.
pub(crate) const SESSION_COLUMNS: &str = "session_hash, appid, openid, user_id, plugin_appid, created_at_ms, expires_at_ms";

/// A row of `end_users`.
#[derive(sqlx::FromRow)]
pub(crate) struct EndUserRow {
    appid: String,
    user_id: String,
    openid: String,
    nick: Option<String>,
    scopes: String,
    created_at_ms: i64,
}

impl From<EndUserRow> for EndUser {
    fn from(row: EndUserRow) -> EndUser {
        EndUser {
            appid: row.appid,
            user: row.user_id,
            openid: row.openid,
            nick: row.nick,
            // A malformed list reads as no scopes: consent must be given again rather than assumed.
            scopes: serde_json::from_str(&row.scopes).unwrap_or_default(),
            created_at_ms: row.created_at_ms,
        }
    }
}

/// A row of `client_sessions`.
#[derive(sqlx::FromRow)]
pub(crate) struct SessionRow {
    session_hash: String,
    appid: String,
    openid: String,
    user_id: String,
    plugin_appid: Option<String>,
    created_at_ms: i64,
    expires_at_ms: i64,
}

impl From<SessionRow> for ClientSession {
    fn from(row: SessionRow) -> ClientSession {
        ClientSession {
            session_hash: row.session_hash,
            appid: row.appid,
            openid: row.openid,
            user: row.user_id,
            plugin_appid: row.plugin_appid,
            created_at_ms: row.created_at_ms,
            expires_at_ms: row.expires_at_ms,
        }
    }
}

/// A row of `grants`.
#[derive(sqlx::FromRow)]
pub(crate) struct GrantRow {
    payer_appid: String,
    caller_appid: String,
    created_at_ms: i64,
}

impl From<GrantRow> for Grant {
    fn from(row: GrantRow) -> Grant {
        Grant {
            payer_appid: row.payer_appid,
            caller_appid: row.caller_appid,
            created_at_ms: row.created_at_ms,
        }
    }
}

/// `have` plus `add`, sorted, without duplicates.
pub(crate) fn merge_scopes(have: &[String], add: &[String]) -> Vec<String> {
    let mut scopes: Vec<String> = have.iter().chain(add).cloned().collect();
    scopes.sort_unstable();
    scopes.dedup();
    scopes
}
