//! Access tokens (`wire.md` §2, reference `wechat-wire.md` §3): issue by `/cgi-bin/token` with a
//! 5-minute overlap for the superseded token, the stable token with its own rotation and force-refresh
//! limits, and the check every API call makes.

use std::sync::Arc;

use souk_types::token::{TokenAnswer, SUPERSEDED_OVERLAP_SECS, TOKEN_LIFETIME_SECS};
use souk_types::Code;

use crate::error::{Failure, Result};
use crate::ids;
use crate::model::{App, ForceRefresh, Supersede, TokenKind, TokenRecord};
use crate::souk::Souk;

const LIFETIME_MS: i64 = TOKEN_LIFETIME_SECS * 1000;
const OVERLAP_MS: i64 = SUPERSEDED_OVERLAP_SECS * 1000;
/// Force refreshes of the stable token allowed per day (UTC+8).
pub const FORCE_REFRESH_PER_DAY: u32 = 20;
/// The least time between two force refreshes.
pub const FORCE_REFRESH_GAP_MS: i64 = 30_000;
const DAY_MS: i64 = 86_400_000;
const UTC8_MS: i64 = 8 * 3_600_000;

/// The credentials of a token request, as sent (any may be missing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenRequest {
    /// Must be `client_credential`.
    pub grant_type: Option<String>,
    /// The app.
    pub appid: Option<String>,
    /// Its secret.
    pub secret: Option<String>,
}

/// An authenticated caller: the app a valid token belongs to.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The app.
    pub app: Arc<App>,
}

fn store_failure(err: &crate::store::StoreError) -> Failure {
    Failure::from_store(Code::SystemError, err)
}

fn seconds_left(expires_at_ms: i64, now_ms: i64) -> i64 {
    ((expires_at_ms - now_ms) / 1000).max(0)
}

impl Souk {
    /// Checks the credentials in the documented order: grant type, appid, secret, app, secret match.
    async fn check_credentials(&self, request: &TokenRequest) -> Result<Arc<App>> {
        match request.grant_type.as_deref() {
            Some("client_credential") => {}
            _ => return Err(Failure::new(Code::InvalidGrantType, "grant_type must be client_credential")),
        }
        let appid = request
            .appid
            .as_deref()
            .filter(|id| !id.is_empty())
            .ok_or_else(|| Failure::new(Code::AppidMissing, ""))?;
        let secret = request
            .secret
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Failure::new(Code::AppSecretMissing, ""))?;
        let app = self.find_app(appid).await.map_err(|err| store_failure(&err))?;
        let app = app
            .filter(|app| !app.disabled)
            .ok_or_else(|| Failure::new(Code::InvalidAppid, format!("no enabled app {appid}")))?;
        if !ids::secret_matches(secret, &app.secret_hash) {
            return Err(Failure::new(Code::InvalidAppSecret, "the secret does not belong to this app"));
        }
        Ok(app)
    }

    fn new_token_record(&self, appid: &str, kind: TokenKind, now_ms: i64) -> (String, TokenRecord) {
        let token = ids::new_token();
        let record = TokenRecord {
            token_hash: ids::hash_secret(&token),
            plaintext: (kind == TokenKind::Stable).then(|| token.clone()),
            appid: appid.to_owned(),
            kind,
            issued_at_ms: now_ms,
            expires_at_ms: now_ms + LIFETIME_MS,
            superseded: false,
            dies_at_ms: None,
        };
        (token, record)
    }

    /// `GET /cgi-bin/token`: a new token; the app's previous one keeps working 5 more minutes.
    pub async fn get_access_token(&self, request: &TokenRequest) -> Result<TokenAnswer> {
        let app = self.check_credentials(request).await?;
        let now_ms = self.now_ms();
        let (token, record) = self.new_token_record(&app.appid, TokenKind::Plain, now_ms);
        let supersede = Supersede::Overlap {
            dies_at_ms: now_ms + OVERLAP_MS,
        };
        self.store
            .issue_token(&record, supersede, None)
            .await
            .map_err(|err| store_failure(&err))?;
        self.evict_tokens(&app.appid, TokenKind::Plain).await;
        Ok(TokenAnswer {
            access_token: token,
            expires_in: TOKEN_LIFETIME_SECS,
        })
    }

    /// `POST /cgi-bin/stable_token`.
    ///
    /// Normal mode hands back the current token while more than 5 minutes remain; in its last 5
    /// minutes a new one is issued and the old one lives out its time (the overlap). `force_refresh`
    /// kills the old token at once, at most 20 times a day and 30 s apart; a force refresh sooner than
    /// 30 s after the last answers the current token unchanged, as the platform documents.
    pub async fn get_stable_token(&self, request: &TokenRequest, force_refresh: bool) -> Result<TokenAnswer> {
        let app = self.check_credentials(request).await?;
        let now_ms = self.now_ms();
        if force_refresh {
            let day = (now_ms + UTC8_MS).div_euclid(DAY_MS);
            let counted = self
                .store
                .count_force_refresh(&app.appid, day, now_ms, FORCE_REFRESH_GAP_MS, FORCE_REFRESH_PER_DAY)
                .await
                .map_err(|err| store_failure(&err))?;
            match counted {
                ForceRefresh::Allowed => {
                    return self
                        .rotate_stable(&app.appid, now_ms, Supersede::Overlap { dies_at_ms: now_ms }, None)
                        .await
                }
                ForceRefresh::DailyLimit => {
                    return Err(Failure::new(
                        Code::DailyQuotaReached,
                        format!("force_refresh is limited to {FORCE_REFRESH_PER_DAY} a day"),
                    ))
                }
                ForceRefresh::TooSoon => {}
            }
        }
        let current = self
            .store
            .current_token(&app.appid, TokenKind::Stable)
            .await
            .map_err(|err| store_failure(&err))?;
        if let Some(current) = &current {
            if let (Some(token), false) = (&current.plaintext, current.expires_at_ms - now_ms <= OVERLAP_MS) {
                return Ok(TokenAnswer {
                    access_token: token.clone(),
                    expires_in: seconds_left(current.expires_at_ms, now_ms),
                });
            }
        }
        let expected = Some(current.as_ref().map(|record| record.token_hash.as_str()));
        self.rotate_stable(
            &app.appid,
            now_ms,
            Supersede::Overlap {
                dies_at_ms: now_ms + OVERLAP_MS,
            },
            expected,
        )
        .await
    }

    /// Issues a new stable token; if another call rotated first, answers the winner's token.
    async fn rotate_stable(&self, appid: &str, now_ms: i64, supersede: Supersede, expected: Option<Option<&str>>) -> Result<TokenAnswer> {
        let (token, record) = self.new_token_record(appid, TokenKind::Stable, now_ms);
        let issued = self
            .store
            .issue_token(&record, supersede, expected)
            .await
            .map_err(|err| store_failure(&err))?;
        self.evict_tokens(appid, TokenKind::Stable).await;
        if issued {
            return Ok(TokenAnswer {
                access_token: token,
                expires_in: TOKEN_LIFETIME_SECS,
            });
        }
        let winner = self
            .store
            .current_token(appid, TokenKind::Stable)
            .await
            .map_err(|err| store_failure(&err))?;
        match winner.and_then(|record| record.plaintext.map(|token| (token, record.expires_at_ms))) {
            Some((token, expires_at_ms)) => Ok(TokenAnswer {
                access_token: token,
                expires_in: seconds_left(expires_at_ms, now_ms),
            }),
            None => Err(Failure::new(Code::SystemError, "stable token rotation raced; retry")),
        }
    }

    /// Checks an `access_token`: 41001 missing, 40014 unknown or malformed, 40001 superseded past its
    /// overlap, 42001 expired, 40013 when its app is disabled.
    pub async fn authenticate(&self, token: Option<&str>) -> Result<Caller> {
        let token = token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Failure::new(Code::AccessTokenMissing, ""))?;
        if !ids::looks_like_token(token) {
            return Err(Failure::new(Code::AccessTokenInvalid, "not a token souk issued"));
        }
        let now_ms = self.now_ms();
        let record = match self.tokens.get(token, now_ms) {
            Ok(record) => record,
            Err(stamp) => {
                let found = self
                    .store
                    .find_token(&ids::hash_secret(token))
                    .await
                    .map_err(|err| store_failure(&err))?;
                let record = Arc::new(found.ok_or_else(|| Failure::new(Code::AccessTokenInvalid, "unknown token"))?);
                self.tokens.insert(token.to_owned(), record.clone(), now_ms, stamp);
                record
            }
        };
        if record.superseded && record.dies_at_ms.is_some_and(|dies_at| now_ms >= dies_at) {
            return Err(Failure::new(Code::AccessTokenNotLatest, "a newer token replaced this one"));
        }
        if now_ms >= record.expires_at_ms {
            return Err(Failure::new(Code::AccessTokenExpired, ""));
        }
        let app = self.find_app(&record.appid).await.map_err(|err| store_failure(&err))?;
        match app {
            Some(app) if !app.disabled => Ok(Caller { app }),
            _ => Err(Failure::new(Code::InvalidAppid, "the token's app is disabled")),
        }
    }
}
