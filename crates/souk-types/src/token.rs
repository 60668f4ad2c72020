//! Access tokens on the wire: `GET /cgi-bin/token` and `POST /cgi-bin/stable_token`.

use serde::{Deserialize, Serialize};

/// How long an access token lives, in seconds (`wire.md` §2).
pub const TOKEN_LIFETIME_SECS: i64 = 7200;
/// How long a superseded `/cgi-bin/token` token keeps working, in seconds.
pub const SUPERSEDED_OVERLAP_SECS: i64 = 300;

/// The success answer of both token endpoints; `expires_in` is a JSON number, as wechatpy needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenAnswer {
    /// The bearer token for the `access_token` query parameter.
    pub access_token: String,
    /// Seconds left.
    pub expires_in: i64,
}
