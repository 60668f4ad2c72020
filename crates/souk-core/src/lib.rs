//! The domain rules of souk: access tokens, the service-market call with exact charging, the registry
//! an operator manages, and the call log.
//!
//! **Architecture invariant:** this crate knows nothing about HTTP or SQL. It reads time only through
//! [`clock::Clock`], reaches storage only through the traits of [`store`], and reaches providers only
//! through [`provider::ProviderTransport`].
//!
//! Layout: [`souk::Souk`] is the context; [`tokens`], [`market`] and [`registry`] add its domain
//! calls; [`store`] and [`model`] define what storage keeps; [`calllog`] batches the call log;
//! [`ratelimit`] and [`cache`] hold short-lived state.

pub mod blob;
pub mod builtin;
pub mod cache;
pub mod calllog;
pub mod cdn;
pub mod cdn_markers;
pub mod clients;
pub mod clock;
pub mod cloud;
pub mod error;
pub mod ids;
pub mod jobs;
pub mod maintenance;
pub mod market;
pub mod media;
pub mod messages;
pub mod model;
pub mod paid_unionid;
pub mod provider;
pub mod push;
pub mod ratelimit;
pub mod registry;
pub mod settling;
pub mod signals;
pub mod souk;
pub mod store;
pub mod tokens;
pub mod wxacode;

pub use error::Failure;
pub use souk::Souk;
