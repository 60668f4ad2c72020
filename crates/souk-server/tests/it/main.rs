//! End-to-end tests of souk's HTTP APIs: a real server on a loopback port, real providers, an injected
//! clock. One binary, one module per API family.

#[macro_use]
mod common;

mod admin;
mod builtins;
mod cdn;
mod client;
mod cloud;
mod crop;
mod jobs;
mod market;
mod media;
mod messages;
mod outage;
mod paid_unionid;
mod scan;
mod superres;
mod tokens;
mod wxacode;
