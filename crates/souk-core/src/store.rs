//! The durable storage role, as traits. Backends (SQLite, PostgreSQL) live in `souk-store`; this crate
//! only says what they must guarantee.
//!
//! **Exactness lives here.** Every rule that must hold across processes (a unit charged once, a
//! `client_msg_id` answered once, a token superseded once) is stated as a property of one store call,
//! done in one transaction or one conditional update, never as a lock held in one process.

use async_trait::async_trait;

pub mod cdn;
pub mod clients;
pub mod cloud;
pub mod codes;
pub mod jobs;
pub mod media;
pub mod messages;
pub mod payments;

pub use cdn::CdnFiles;
pub use clients::Clients;
pub use cloud::CloudApps;
pub use codes::CodeQuota;
pub use jobs::Jobs;
pub use media::MediaStore;
pub use messages::Conversations;
pub use payments::Payments;

use crate::model::{
    Api, App, CallFilter, CallRecord, ForceRefresh, IdempotencyRecord, LedgerEntry, Package, PackageFilter, ReserveOutcome, ReserveRequest,
    Service, Settlement, Supersede, TokenKind, TokenRecord,
};

/// A storage failure, translated once at the backend boundary. The wire never sees SQL text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The object is not there.
    #[error("not found")]
    NotFound,
    /// An object with that key already exists (unique violation).
    #[error("already exists")]
    AlreadyExists,
    /// The store cannot be reached (connection refused, pool timed out, ...).
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Anything else; the detail is for the log only.
    #[error("storage error: {0}")]
    Internal(String),
}

/// Apps, services, APIs and packages: what the operator registers.
#[async_trait]
pub trait Registry: Send + Sync {
    /// Inserts an app; `AlreadyExists` if the appid is taken.
    async fn insert_app(&self, app: &App) -> Result<(), StoreError>;
    /// One app.
    async fn get_app(&self, appid: &str) -> Result<Option<App>, StoreError>;
    /// Apps ordered by appid, after the cursor.
    async fn list_apps(&self, after: Option<&str>, limit: u32) -> Result<Vec<App>, StoreError>;
    /// Replaces every field of an existing app; `NotFound` if there is none.
    async fn update_app(&self, app: &App) -> Result<(), StoreError>;

    /// Inserts a service; `AlreadyExists` if the id is taken.
    async fn insert_service(&self, service: &Service) -> Result<(), StoreError>;
    /// One service.
    async fn get_service(&self, service_id: &str) -> Result<Option<Service>, StoreError>;
    /// Services ordered by id, after the cursor.
    async fn list_services(&self, after: Option<&str>, limit: u32) -> Result<Vec<Service>, StoreError>;
    /// Replaces every field of an existing service; `NotFound` if there is none.
    async fn update_service(&self, service: &Service) -> Result<(), StoreError>;

    /// Inserts an API; `AlreadyExists` if the service already has one of that name, `NotFound` if the
    /// service does not exist.
    async fn insert_api(&self, api: &Api) -> Result<(), StoreError>;
    /// One API.
    async fn get_api(&self, service_id: &str, name: &str) -> Result<Option<Api>, StoreError>;
    /// A service's APIs ordered by name.
    async fn list_apis(&self, service_id: &str) -> Result<Vec<Api>, StoreError>;
    /// Replaces every field of an existing API; `NotFound` if there is none.
    async fn update_api(&self, api: &Api) -> Result<(), StoreError>;
    /// Deletes an API; `NotFound` if there is none.
    async fn delete_api(&self, service_id: &str, name: &str) -> Result<(), StoreError>;

    /// Inserts a package; `AlreadyExists` if the id is taken.
    async fn insert_package(&self, package: &Package) -> Result<(), StoreError>;
    /// One package.
    async fn get_package(&self, package_id: &str) -> Result<Option<Package>, StoreError>;
    /// Packages ordered by id, filtered.
    async fn list_packages(&self, filter: &PackageFilter) -> Result<Vec<Package>, StoreError>;
}

/// Access tokens.
#[async_trait]
pub trait Tokens: Send + Sync {
    /// Stores `token` and, in the same transaction, supersedes the app's other live tokens of the same
    /// kind as `supersede` says (a live token is one not yet superseded).
    ///
    /// With `expect_current = Some(expected)`, the issue happens only if the app's newest live token of
    /// that kind has hash `expected` (`None`: there is none); otherwise nothing changes and the answer
    /// is `false`. This makes a stable-token rotation happen once when several nodes race.
    async fn issue_token(
        &self,
        token: &TokenRecord,
        supersede: Supersede,
        expect_current: Option<Option<&str>>,
    ) -> Result<bool, StoreError>;
    /// A token by its hash.
    async fn find_token(&self, token_hash: &str) -> Result<Option<TokenRecord>, StoreError>;
    /// The app's newest live (not superseded) token of a kind.
    async fn current_token(&self, appid: &str, kind: TokenKind) -> Result<Option<TokenRecord>, StoreError>;
    /// Supersedes at once (`dies_at_ms = now_ms`) every live token of the app of that kind.
    async fn kill_tokens(&self, appid: &str, kind: TokenKind, now_ms: i64) -> Result<u64, StoreError>;
    /// Counts one stable-token force refresh if at most `max_per_day - 1` were counted on `day` (any
    /// number naming the day) and the last was at least `min_gap_ms` ago; atomically.
    async fn count_force_refresh(
        &self,
        appid: &str,
        day: i64,
        now_ms: i64,
        min_gap_ms: i64,
        max_per_day: u32,
    ) -> Result<ForceRefresh, StoreError>;
    /// Deletes tokens that expired before `before_ms`; answers how many.
    async fn sweep_tokens(&self, before_ms: i64) -> Result<u64, StoreError>;
}

/// Packages' units: reservation, settlement and the ledger, with `client_msg_id` idempotency.
#[async_trait]
pub trait Ledger: Send + Sync {
    /// In one transaction: records the `client_msg_id` (a second one from the same caller answers
    /// `Duplicate` and reserves nothing), picks the payer's package for the service (unexpired, enough
    /// units left, soonest expiry first, then oldest), takes the units from it with a conditional
    /// update and writes a `reserved` ledger entry. When no package can pay, nothing is written and
    /// the answer says why (`NoPackage` if the payer has none for the service, `Exhausted` if some
    /// unexpired package exists, else `Expired`).
    async fn reserve(&self, request: &ReserveRequest) -> Result<ReserveOutcome, StoreError>;
    /// In one transaction: moves the entry from `reserved` to committed or released (returning the units
    /// to the package when released) and stores the answer for retries. Settling an entry that is not
    /// `reserved` changes nothing and answers `false`, so a settlement can never count twice.
    async fn settle(&self, settlement: &Settlement) -> Result<bool, StoreError>;
    /// In one transaction: takes back a reservation whose call never ran (a rate limit refused it
    /// while its units were being reserved): deletes the charge while it is still `reserved`, returns
    /// its units to the package and forgets its unanswered `client_msg_id` claim, so a retry runs
    /// again. A charge that is not `reserved` (settled, reaped, or never made) changes nothing and
    /// answers `false`.
    async fn cancel_reservation(&self, request_id: &str) -> Result<bool, StoreError>;
    /// The first call made with this `client_msg_id` by this caller.
    async fn find_idempotent(&self, caller_appid: &str, client_msg_id: &str) -> Result<Option<IdempotencyRecord>, StoreError>;
    /// Releases entries still `reserved` that were made before `before_ms` (their call died with its
    /// process) and forgets their unanswered `client_msg_id`s, so a retry runs again; answers how many.
    /// Entries of unfinished async jobs are skipped: a job may run for hours and settles its own units.
    async fn reap_reservations(&self, before_ms: i64, now_ms: i64) -> Result<u64, StoreError>;
    /// A package's ledger, oldest first.
    async fn ledger(&self, package_id: &str) -> Result<Vec<LedgerEntry>, StoreError>;
    /// Deletes answered `client_msg_id` records older than `before_ms`; answers how many.
    async fn sweep_idempotency(&self, before_ms: i64) -> Result<u64, StoreError>;
}

/// The call log.
#[async_trait]
pub trait CallLog: Send + Sync {
    /// Appends a batch of calls in one transaction. A request id already logged is skipped.
    async fn append_calls(&self, calls: &[CallRecord]) -> Result<(), StoreError>;
    /// Calls matching the filter, newest first (by `at_ms`, then request id, descending).
    async fn list_calls(&self, filter: &CallFilter) -> Result<Vec<CallRecord>, StoreError>;
}

/// Everything durable, as one object.
#[async_trait]
pub trait DurableStore:
    Registry
    + Tokens
    + Ledger
    + Jobs
    + CdnFiles
    + MediaStore
    + CodeQuota
    + Clients
    + CloudApps
    + Conversations
    + Payments
    + CallLog
    + Send
    + Sync
    + 'static
{
    /// Whether the store answers (for `/readyz`).
    async fn ping(&self) -> Result<(), StoreError>;
    /// The backend's name for logs (`sqlite`, `postgres`).
    fn backend(&self) -> &'static str;
}
