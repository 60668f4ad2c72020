//! The one error type of the domain: a public [`Code`] plus the detail a person needs.
//!
//! Internal causes (storage errors) are logged here, where they are translated, and never reach the
//! wire: the caller sees the code's generic message and the request id.

use souk_types::Code;

use crate::store::StoreError;

/// A failed domain call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {detail}", code.message())]
pub struct Failure {
    /// The public code.
    pub code: Code,
    /// What exactly went wrong, for the caller.
    pub detail: String,
    /// The provider's own error code, for `success: false` answers.
    pub provider_errcode: Option<String>,
    /// The provider's own error message, for `success: false` answers.
    pub provider_errmsg: Option<String>,
}

impl Failure {
    /// A failure with a code and a detail.
    pub fn new(code: Code, detail: impl Into<String>) -> Self {
        Failure {
            code,
            detail: detail.into(),
            provider_errcode: None,
            provider_errmsg: None,
        }
    }

    /// Translates a storage error: `NotFound` and `AlreadyExists` become the given caller-facing codes'
    /// messages where the call site passes them; everything else is souk's own failure under `code`.
    pub fn from_store(code: Code, err: &StoreError) -> Self {
        tracing::error!(error = %err, "storage call failed");
        let detail = match err {
            StoreError::Unavailable(_) => "storage is unavailable, try again later",
            _ => "storage error",
        };
        Failure::new(code, detail)
    }

    /// The message of an answer: the code's words, then the detail.
    pub fn message(&self) -> String {
        if self.detail.is_empty() {
            self.code.message().to_owned()
        } else {
            format!("{} ({})", self.code.message(), self.detail)
        }
    }
}

/// Shorthand for domain results.
pub type Result<T, E = Failure> = std::result::Result<T, E>;
