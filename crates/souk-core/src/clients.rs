//! The client side (`wire.md` §4): sessions an app's server mints for its users, the users themselves
//! (openid per app, unionid per open account), who pays for a client call (`consumeType: 2`, plugins),
//! consent (`authorize`), and the operator's grants.

use std::sync::Arc;

use souk_types::client::SessionRequest;
use souk_types::Code;

use crate::error::{Failure, Result};
use crate::ids;
use crate::market::Invoker;
use crate::model::App;
use crate::signals::Signal;
use crate::souk::Souk;
use crate::store::clients::{ClientSession, EndUser, Grant};
use crate::store::StoreError;
use crate::tokens::Caller;

/// How long a client session lives.
pub const SESSION_LIFETIME_MS: i64 = 7_200_000;

/// A minted session, as the app's server receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MintedSession {
    /// The bearer token the page sends.
    pub session: String,
    /// Seconds left.
    pub expires_in: i64,
    /// The user's openid in the app.
    pub openid: String,
    /// The user's unionid, when the app is bound to an open account.
    pub unionid: Option<String>,
}

/// A page or mini-program authenticated by its client session.
#[derive(Debug, Clone)]
pub struct ClientCaller {
    /// The app (the host app, for a plugin).
    pub app: Arc<App>,
    /// The session.
    pub session: Arc<ClientSession>,
}

impl ClientCaller {
    /// The user's openid.
    pub fn openid(&self) -> &str {
        &self.session.openid
    }
}

fn internal(err: &StoreError) -> Failure {
    Failure::from_store(Code::SystemError, err)
}

/// An openid or unionid: `o` and 27 characters, shaped like the platform's.
pub(crate) fn new_person_id() -> String {
    format!("o{}", &ids::new_token()[..27])
}

impl Souk {
    /// `POST /souk/v1/client-sessions`: the app's server vouches for one of its users. The user is
    /// created on first use; a given nick replaces the stored one, given scopes are added.
    pub async fn mint_client_session(&self, caller: &Caller, request: &SessionRequest) -> Result<MintedSession> {
        let app = &caller.app;
        if let Some(plugin_appid) = &request.plugin_appid {
            let plugin = self.find_app(plugin_appid).await.map_err(|err| internal(&err))?;
            if plugin.is_none_or(|plugin| plugin.disabled) || plugin_appid == &app.appid {
                return Err(Failure::new(
                    Code::InvalidAppid,
                    format!("plugin_appid {plugin_appid} is not another enabled app"),
                ));
            }
        }
        let now_ms = self.now_ms();
        let new = EndUser {
            appid: app.appid.clone(),
            user: request.user.clone(),
            openid: new_person_id(),
            nick: request.nick.clone(),
            scopes: request.scopes.clone(),
            created_at_ms: now_ms,
        };
        let user = self.store.get_or_create_user(&new).await.map_err(|err| internal(&err))?;
        if user.openid != new.openid && (request.nick.is_some() || !request.scopes.is_empty()) {
            self.store
                .update_user(&app.appid, &user.openid, request.nick.as_deref(), &request.scopes)
                .await
                .map_err(|err| internal(&err))?;
        }
        let unionid = match &app.open_account {
            Some(open_account) => Some(
                self.store
                    .get_or_create_unionid(open_account, &request.user, &new_person_id())
                    .await
                    .map_err(|err| internal(&err))?,
            ),
            None => None,
        };
        let token = ids::new_token();
        let session = ClientSession {
            session_hash: ids::hash_secret(&token),
            appid: app.appid.clone(),
            openid: user.openid.clone(),
            user: request.user.clone(),
            plugin_appid: request.plugin_appid.clone(),
            created_at_ms: now_ms,
            expires_at_ms: now_ms + SESSION_LIFETIME_MS,
        };
        self.store.insert_session(&session).await.map_err(|err| internal(&err))?;
        Ok(MintedSession {
            session: token,
            expires_in: SESSION_LIFETIME_MS / 1000,
            openid: user.openid,
            unionid,
        })
    }

    /// Checks a client session (`Authorization: Bearer`): missing, unknown or expired sessions and
    /// disabled apps are refused.
    pub async fn authenticate_client(&self, session: Option<&str>) -> Result<ClientCaller> {
        let token = session
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Failure::new(Code::ClientSessionMissing, ""))?;
        if !ids::looks_like_token(token) {
            return Err(Failure::new(Code::ClientSessionInvalid, "not a session souk minted"));
        }
        let now_ms = self.now_ms();
        let session = match self.sessions.get(token, now_ms) {
            Ok(session) => session,
            Err(stamp) => {
                let found = self
                    .store
                    .find_session(&ids::hash_secret(token))
                    .await
                    .map_err(|err| internal(&err))?;
                let session = Arc::new(found.ok_or_else(|| Failure::new(Code::ClientSessionInvalid, "unknown or revoked session"))?);
                self.sessions.insert(token.to_owned(), session.clone(), now_ms, stamp);
                session
            }
        };
        if now_ms >= session.expires_at_ms {
            return Err(Failure::new(
                Code::ClientSessionInvalid,
                "the session expired; ask the app's server for a new one",
            ));
        }
        let app = self.find_app(&session.appid).await.map_err(|err| internal(&err))?;
        match app {
            Some(app) if !app.disabled => Ok(ClientCaller { app, session }),
            _ => Err(Failure::new(Code::InvalidAppid, "the session's app is disabled")),
        }
    }

    /// Who makes a client call and who pays: the session's app (the host, for a plugin), or with
    /// `consumeType: 2` the named app, when both are bound to one open account or the payer granted the
    /// caller. An unknown or disabled payer is an appid error (-6); a payer that did not allow it is a
    /// charge failure (-10).
    pub async fn client_invoker(&self, client: &ClientCaller, consume_appid: Option<&str>) -> Result<Invoker> {
        let mut invoker = Invoker::for_app(client.app.clone());
        invoker.openid = Some(client.session.openid.clone());
        invoker.plugin_appid = client.session.plugin_appid.clone();
        let Some(payer_appid) = consume_appid.filter(|payer| *payer != client.app.appid) else {
            return Ok(invoker);
        };
        let payer = self
            .find_app(payer_appid)
            .await
            .map_err(|err| Failure::from_store(Code::MarketInternal, &err))?;
        let payer = payer
            .filter(|payer| !payer.disabled)
            .ok_or_else(|| Failure::new(Code::MarketAppidError, format!("consumeAppid {payer_appid} is not an enabled app")))?;
        let same_open_account = client.app.open_account.is_some() && client.app.open_account == payer.open_account;
        let granted = same_open_account
            || self
                .store
                .has_grant(&payer.appid, &client.app.appid)
                .await
                .map_err(|err| Failure::from_store(Code::MarketInternal, &err))?;
        if !granted {
            return Err(Failure::new(
                Code::MarketChargeFailed,
                format!(
                    "app {} may not charge app {payer_appid}: bind both to one open account or add a grant",
                    client.app.appid
                ),
            ));
        }
        invoker.payer = payer;
        Ok(invoker)
    }

    /// `authorize {scopes}`: records the user's consent.
    pub async fn authorize_scopes(&self, client: &ClientCaller, scopes: &[String]) -> Result<EndUser> {
        self.store
            .update_user(&client.app.appid, client.openid(), None, scopes)
            .await
            .map_err(|err| internal(&err))
    }

    /// Lets `caller_appid` charge `payer_appid`'s packages with `consumeType: 2`.
    pub async fn create_grant(&self, payer_appid: &str, caller_appid: &str) -> Result<Grant> {
        for appid in [payer_appid, caller_appid] {
            self.get_app(appid)
                .await
                .map_err(|_| Failure::new(Code::AdminInvalidRequest, format!("{appid} is not a registered app")))?;
        }
        if payer_appid == caller_appid {
            return Err(Failure::new(
                Code::AdminInvalidRequest,
                "an app always pays for itself: payer and caller must differ",
            ));
        }
        let grant = Grant {
            payer_appid: payer_appid.to_owned(),
            caller_appid: caller_appid.to_owned(),
            created_at_ms: self.now_ms(),
        };
        self.store.insert_grant(&grant).await.map_err(|err| match err {
            StoreError::AlreadyExists => Failure::new(Code::AdminConflict, "this grant exists"),
            other => internal(&other),
        })?;
        Ok(grant)
    }

    /// Grants, filtered by either side.
    pub async fn list_grants(&self, payer_appid: Option<&str>, caller_appid: Option<&str>) -> Result<Vec<Grant>> {
        self.store
            .list_grants(payer_appid, caller_appid)
            .await
            .map_err(|err| internal(&err))
    }

    /// Takes a grant back.
    pub async fn delete_grant(&self, payer_appid: &str, caller_appid: &str) -> Result<()> {
        self.store.delete_grant(payer_appid, caller_appid).await.map_err(|err| match err {
            StoreError::NotFound => Failure::new(Code::AdminNotFound, "no such grant"),
            other => internal(&other),
        })
    }

    /// Ends every session of an app (its secret was rotated).
    pub(crate) async fn revoke_client_sessions(&self, appid: &str) -> Result<()> {
        self.store.revoke_sessions(appid).await.map_err(|err| internal(&err))?;
        self.signal(Signal::Sessions { appid: appid.to_owned() }).await;
        Ok(())
    }
}
