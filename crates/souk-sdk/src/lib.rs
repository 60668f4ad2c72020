//! A Rust client for souk: the admin API, the WeChat-compatible token and service-market calls, and
//! what a provider needs to check that a request really comes from souk.
//!
//! - [`AdminClient`]: typed calls to `/souk/v1/admin/` (`wire.md` §6).
//! - [`WechatClient`]: `/cgi-bin/token`, `/cgi-bin/stable_token`, `/wxa/servicemarket`, customer-service
//!   messages and getPaidUnionId (`wire.md` §2).
//! - [`provider`]: [`provider::verify_request`], the provider side of the signature (`cloud-gateway.md` §3).
//! - [`push`]: [`push::verify_push`], an app server's check of souk's pushes to its `message_url`.
//!
//! Every failure is an [`SdkError`]. The wire shapes are those of `souk-types`, re-exported as
//! [`types`]; this crate knows nothing of souk's server, core or storage.

mod admin;
mod error;
pub mod provider;
pub mod push;
mod url;
mod wechat;

pub use admin::{AdminClient, CallQuery, JobQuery};
pub use error::SdkError;
pub use souk_types as types;
pub use wechat::{InvokeAnswer, WechatClient};
