//! Wire types of souk: the closed table of public error codes, the request and answer shapes of the
//! WeChat-compatible and admin APIs, and the signature recipe shared with providers.
//!
//! This crate does no I/O and knows no framework: the server adapts [`codes::Code`] to HTTP, the SDK
//! uses the same shapes from the other side of the wire.
//!
//! Layout:
//! - [`codes`]: every public code (server errcode, client errCode, HTTP status, message).
//! - [`sign`]: the Taobao/Qimen-style signature (`cloud-gateway.md` §3) and the provider timestamp.
//! - [`market`]: `/wxa/servicemarket` request parsing and the provider envelope.
//! - [`message`]: customer-service messages (`custom/send`, `custom/typing`, the user's `messages`).
//! - [`cloud`]: the external-HTTP gateway's request (door and MTOP shapes) and origin normalisation.
//! - [`token`]: access-token answers.
//! - [`admin`]: the admin API's request and answer bodies.

pub mod admin;
pub mod client;
pub mod cloud;
pub mod codes;
pub mod market;
pub mod message;
pub mod sign;
pub mod token;

pub use codes::Code;
