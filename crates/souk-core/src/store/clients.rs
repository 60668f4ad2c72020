//! The client side's durable records: end users (openid per app, unionid per open account), client
//! sessions, and grants that let one app charge another's packages (`consumeType: 2`).

use async_trait::async_trait;

use super::StoreError;

/// One person as one app knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndUser {
    /// The app.
    pub appid: String,
    /// The operator's stable id for the person.
    pub user: String,
    /// The person's id in this app, stable per (app, user).
    pub openid: String,
    /// Display name.
    pub nick: Option<String>,
    /// Scopes the person granted this app (`scope.userInfo`, ...).
    pub scopes: Vec<String>,
    /// First use.
    pub created_at_ms: i64,
}

/// A client session minted by an app's server for one of its users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSession {
    /// SHA-256 hex of the session token (the lookup key; the token itself is not kept).
    pub session_hash: String,
    /// The app that minted it (the host app, for a plugin).
    pub appid: String,
    /// The user's openid in that app.
    pub openid: String,
    /// The operator's id of the user.
    pub user: String,
    /// The plugin the session is for.
    pub plugin_appid: Option<String>,
    /// Mint time.
    pub created_at_ms: i64,
    /// End of life.
    pub expires_at_ms: i64,
}

/// Permission for `caller_appid` to charge `payer_appid`'s packages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The app whose packages pay.
    pub payer_appid: String,
    /// The app allowed to make them pay.
    pub caller_appid: String,
    /// When it was granted.
    pub created_at_ms: i64,
}

/// End users, client sessions and grants.
#[async_trait]
pub trait Clients: Send + Sync {
    /// The app's user with this operator id; when there is none, `new` is stored and answered. Two
    /// racing first uses answer the same record (the first one stored).
    async fn get_or_create_user(&self, new: &EndUser) -> Result<EndUser, StoreError>;
    /// A user by openid.
    async fn find_user(&self, appid: &str, openid: &str) -> Result<Option<EndUser>, StoreError>;
    /// Replaces a user's nick (when `Some`) and adds scopes (kept sorted, without duplicates);
    /// answers the updated user, or `NotFound`.
    async fn update_user(&self, appid: &str, openid: &str, nick: Option<&str>, add_scopes: &[String]) -> Result<EndUser, StoreError>;
    /// The person's unionid in an open account; when there is none, `new_unionid` is stored and
    /// answered (racing first uses answer the same one).
    async fn get_or_create_unionid(&self, open_account: &str, user: &str, new_unionid: &str) -> Result<String, StoreError>;

    /// Stores a session.
    async fn insert_session(&self, session: &ClientSession) -> Result<(), StoreError>;
    /// A session by its hash.
    async fn find_session(&self, session_hash: &str) -> Result<Option<ClientSession>, StoreError>;
    /// Deletes every session of an app (secret rotation); answers how many.
    async fn revoke_sessions(&self, appid: &str) -> Result<u64, StoreError>;
    /// Deletes sessions that expired before `before_ms`; answers how many.
    async fn sweep_sessions(&self, before_ms: i64) -> Result<u64, StoreError>;

    /// Stores a grant; `AlreadyExists` if it is there.
    async fn insert_grant(&self, grant: &Grant) -> Result<(), StoreError>;
    /// Deletes a grant; `NotFound` if there is none.
    async fn delete_grant(&self, payer_appid: &str, caller_appid: &str) -> Result<(), StoreError>;
    /// Whether the payer granted the caller.
    async fn has_grant(&self, payer_appid: &str, caller_appid: &str) -> Result<bool, StoreError>;
    /// Grants, filtered by either side, ordered by (payer, caller).
    async fn list_grants(&self, payer_appid: Option<&str>, caller_appid: Option<&str>) -> Result<Vec<Grant>, StoreError>;
}
