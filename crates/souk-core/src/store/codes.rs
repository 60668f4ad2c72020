//! Mini-program codes in storage: the [`CodeQuota`] trait, the lifetime count of codes per app (45029)
//! and the short ids the codes' URLs name.

use async_trait::async_trait;

use super::StoreError;

/// One code as stored: its short id and what it points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRecord {
    /// The short id in its URL (`<public_url>/souk/v1/codes/<code_id>`).
    pub code_id: String,
    /// The app it belongs to.
    pub appid: String,
    /// The API it came from (`qrcode`, `get`, `unlimited`).
    pub kind: String,
    /// SHA-256 (hex) of the kind and every parameter: identical requests have the same hash.
    pub params_hash: String,
    /// Whether it counts against the app's lifetime limit.
    pub counted: bool,
    /// createwxaqrcode, getwxacode: the page and query.
    pub path: Option<String>,
    /// getwxacodeunlimit: the page (empty: the home page).
    pub page: Option<String>,
    /// getwxacodeunlimit: the scene.
    pub scene: Option<String>,
    /// getwxacode, getwxacodeunlimit: `release`, `trial` or `develop`.
    pub env_version: Option<String>,
    /// When it was first made.
    pub created_at_ms: i64,
}

/// What [`CodeQuota::count_code`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeCount {
    /// A new code, kept (and counted if it is `counted`).
    Counted(CodeRecord),
    /// The app already has a code with these parameters: it is answered and nothing is counted.
    AlreadyCounted(CodeRecord),
    /// A new counted code, but the app has `limit` counted codes already: nothing was kept.
    LimitReached,
}

/// The codes apps made, with the lifetime limit.
#[async_trait]
pub trait CodeQuota: Send + Sync {
    /// Keeps `code` unless the app has one with the same `params_hash` (answered instead), atomically:
    /// a `counted` code is kept only while the app has fewer than `limit` counted codes, however many
    /// calls race (different parameters each count once; identical ones once in all).
    async fn count_code(&self, code: &CodeRecord, limit: u64) -> Result<CodeCount, StoreError>;
    /// One code by its short id.
    async fn get_code(&self, code_id: &str) -> Result<Option<CodeRecord>, StoreError>;
    /// How many counted codes the app has.
    async fn counted_codes(&self, appid: &str) -> Result<u64, StoreError>;
}
