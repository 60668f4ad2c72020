//! The records souk keeps, as the domain sees them. Storage backends map these to rows; nothing here
//! knows about SQL.
//!
//! Times are Unix milliseconds (`*_ms`) throughout, read from the injected [`crate::clock::Clock`].

use serde_json::Value;
use souk_types::admin::{ApiMode, RateLimit};

/// A registered app (mini-program, mini-game, official account).
#[derive(Debug, Clone, PartialEq)]
pub struct App {
    /// `wx` + 16 hex.
    pub appid: String,
    /// Name for people.
    pub name: String,
    /// `miniprogram`, `minigame`, `official_account`, ...
    pub app_type: String,
    /// SHA-256 hex of the secret; the secret itself is shown once and never stored.
    pub secret_hash: String,
    /// Open account the app is bound to.
    pub open_account: Option<String>,
    /// Registered pages.
    pub pages: Vec<String>,
    /// Theme colour.
    pub theme_color: Option<String>,
    /// Push URL.
    pub message_url: Option<String>,
    /// Push signing token.
    pub message_token: Option<String>,
    /// Origins allowed on the client API (empty: any).
    pub allowed_origins: Vec<String>,
    /// Rate limit over the app's service-market calls.
    pub rate_limit: Option<RateLimit>,
    /// A disabled app gets no tokens and its tokens stop working.
    pub disabled: bool,
    /// Creation time.
    pub created_at_ms: i64,
}

/// A provider's service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// Id like `wx79ac3de8be320b71`.
    pub service_id: String,
    /// Name for people.
    pub name: String,
    /// The secret requests to the provider are signed with (kept in clear: souk must sign with it).
    pub secret: String,
    /// A disabled service answers "unknown service".
    pub disabled: bool,
    /// Creation time.
    pub created_at_ms: i64,
}

/// One API of a service.
#[derive(Debug, Clone, PartialEq)]
pub struct Api {
    /// Owning service.
    pub service_id: String,
    /// Name callers use.
    pub name: String,
    /// Where the signed request goes.
    pub upstream_url: String,
    /// Sync, async or both.
    pub mode: ApiMode,
    /// Timeout of one provider call.
    pub timeout_ms: u64,
    /// JSON Schema for `data`.
    pub schema: Option<Value>,
    /// Units charged per successful call.
    pub price: i64,
    /// Rate limit over all callers.
    pub rate_limit: Option<RateLimit>,
    /// Creation time.
    pub created_at_ms: i64,
}

/// A resource package: units of one service bought by one app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// Id.
    pub package_id: String,
    /// Paying app.
    pub appid: String,
    /// Service.
    pub service_id: String,
    /// Units bought.
    pub units: i64,
    /// Units neither committed nor reserved.
    pub units_left: i64,
    /// After this the package cannot be charged.
    pub expires_at_ms: Option<i64>,
    /// Creation time.
    pub created_at_ms: i64,
}

/// Which token endpoint issued a token: the two families never supersede each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// `GET /cgi-bin/token`.
    Plain,
    /// `POST /cgi-bin/stable_token`.
    Stable,
}

impl TokenKind {
    /// Storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Plain => "plain",
            TokenKind::Stable => "stable",
        }
    }

    /// Parses the storage name.
    pub fn parse(name: &str) -> Option<TokenKind> {
        match name {
            "plain" => Some(TokenKind::Plain),
            "stable" => Some(TokenKind::Stable),
            _ => None,
        }
    }
}

/// An issued access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// SHA-256 hex of the token: the lookup key.
    pub token_hash: String,
    /// The token itself, kept only for stable tokens (normal mode hands the same token back).
    pub plaintext: Option<String>,
    /// Owner.
    pub appid: String,
    /// Family.
    pub kind: TokenKind,
    /// Issue time.
    pub issued_at_ms: i64,
    /// End of its 7200 s.
    pub expires_at_ms: i64,
    /// Set when a newer token of the same app and family replaced it: from then on it works only
    /// until `dies_at_ms`.
    pub superseded: bool,
    /// When a superseded token stops working (the end of its overlap, or at once).
    pub dies_at_ms: Option<i64>,
}

/// What happens to an app's live tokens of one family when a new one is issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Supersede {
    /// Nothing (the first token, or a stable token rotating in its last minutes).
    Nothing,
    /// They keep working until the given time (the 5-minute overlap), or their own expiry if sooner.
    Overlap {
        /// End of the overlap.
        dies_at_ms: i64,
    },
}

/// The result of asking to count one stable-token force refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForceRefresh {
    /// Counted: go ahead.
    Allowed,
    /// The last one was less than the minimum gap ago: no refresh happens.
    TooSoon,
    /// The day's allowance is used up.
    DailyLimit,
}

/// A request to hold units of a package for one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReserveRequest {
    /// The call.
    pub request_id: String,
    /// The app whose package pays.
    pub payer_appid: String,
    /// The app making the call (the idempotency scope).
    pub caller_appid: String,
    /// Service.
    pub service_id: String,
    /// API.
    pub api: String,
    /// Units to hold.
    pub units: i64,
    /// Now.
    pub now_ms: i64,
    /// The caller's `client_msg_id`, if it sent one.
    pub client_msg_id: Option<String>,
}

/// What [`ReserveRequest`] got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReserveOutcome {
    /// Units are held on this package until the call settles.
    Reserved {
        /// The package charged.
        package_id: String,
    },
    /// The caller already sent this `client_msg_id`: nothing was reserved.
    Duplicate(IdempotencyRecord),
    /// The payer has no package for the service.
    NoPackage,
    /// Every usable package has too few units left.
    Exhausted,
    /// The payer has packages for the service, but none unexpired (an unexpired package with too few
    /// units left makes the answer `Exhausted`). A package expires at `expires_at_ms` exactly.
    Expired,
}

/// The first call made with a `client_msg_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// The first call's request id.
    pub request_id: String,
    /// The first call's answer body, once it has one.
    pub answer: Option<String>,
}

/// How a reserved call ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    /// The call.
    pub request_id: String,
    /// `true`: the units are spent; `false`: they go back to the package.
    pub commit: bool,
    /// Now.
    pub now_ms: i64,
    /// The answer to keep for retries: `(caller_appid, client_msg_id, answer body)`.
    pub answer: Option<(String, String, String)>,
}

/// One ledger entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    /// The call.
    pub request_id: String,
    /// Package.
    pub package_id: String,
    /// Paying app.
    pub payer_appid: String,
    /// Calling app.
    pub caller_appid: String,
    /// Service.
    pub service_id: String,
    /// API.
    pub api: String,
    /// Units.
    pub units: i64,
    /// State.
    pub state: ChargeState,
    /// Reservation time.
    pub created_at_ms: i64,
    /// Settlement time.
    pub settled_at_ms: Option<i64>,
}

/// The life of a charge: reserved, then exactly one of committed or released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChargeState {
    /// Held by a call in flight.
    Reserved,
    /// Spent by a successful call.
    Committed,
    /// Returned to the package.
    Released,
}

impl ChargeState {
    /// Storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChargeState::Reserved => "reserved",
            ChargeState::Committed => "committed",
            ChargeState::Released => "released",
        }
    }

    /// Parses the storage name.
    pub fn parse(name: &str) -> Option<ChargeState> {
        match name {
            "reserved" => Some(ChargeState::Reserved),
            "committed" => Some(ChargeState::Committed),
            "released" => Some(ChargeState::Released),
            _ => None,
        }
    }
}

/// One logged call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// Request id.
    pub request_id: String,
    /// Arrival time.
    pub at_ms: i64,
    /// Route family (`token`, `stable_token`, `servicemarket`, ...).
    pub route: String,
    /// Calling app.
    pub appid: Option<String>,
    /// End user.
    pub openid: Option<String>,
    /// The plugin a client call came from (`appid` is then its host app).
    pub plugin_appid: Option<String>,
    /// Service.
    pub service_id: Option<String>,
    /// API.
    pub api: Option<String>,
    /// Errcode answered.
    pub errcode: i64,
    /// What went wrong.
    pub message: Option<String>,
    /// Arrival to answer.
    pub latency_us: i64,
    /// Package charged.
    pub package_id: Option<String>,
    /// Request bytes.
    pub bytes_in: i64,
    /// Answer bytes.
    pub bytes_out: i64,
    /// Served from a cache or an idempotent replay.
    pub cache_hit: bool,
}

/// Filters of `GET calls`; every set field must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallFilter {
    /// App.
    pub appid: Option<String>,
    /// Service.
    pub service_id: Option<String>,
    /// API.
    pub api: Option<String>,
    /// Errcode.
    pub errcode: Option<i64>,
    /// One call.
    pub request_id: Option<String>,
    /// Calls at or after this time.
    pub since_ms: Option<i64>,
    /// Keyset cursor: only calls strictly older than `(at_ms, request_id)`.
    pub before: Option<(i64, String)>,
    /// Page size.
    pub limit: u32,
}

/// Filters of `GET packages`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageFilter {
    /// Paying app.
    pub appid: Option<String>,
    /// Service.
    pub service_id: Option<String>,
    /// Keyset cursor: package ids after this one.
    pub after: Option<String>,
    /// Page size.
    pub limit: u32,
}
