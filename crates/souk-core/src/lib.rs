//! The domain rules of souk: access tokens, the service-market call with exact charging, the call log.
//!
//! **Architecture invariant:** this crate knows nothing about HTTP or SQL. It reads time only through
//! [`clock::Clock`], reaches storage only through the traits of [`store`], and reaches providers only
//! through [`provider::ProviderTransport`].

pub mod clock;
pub mod model;
pub mod store;
