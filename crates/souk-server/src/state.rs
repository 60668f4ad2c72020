//! What every handler shares: the domain context, the admin token, the server's limits.

use std::sync::Arc;

use souk_core::Souk;

use crate::metrics::Metrics;

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// The bearer token of the admin API.
    pub admin_token: String,
    /// The largest request body read, in bytes.
    pub max_body_bytes: usize,
}

/// The router's state.
#[derive(Clone)]
pub struct AppState {
    /// The domain.
    pub souk: Arc<Souk>,
    /// HTTP settings.
    pub settings: Arc<ServerSettings>,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
}

impl AppState {
    /// A state around a domain context.
    pub fn new(souk: Arc<Souk>, settings: ServerSettings) -> Self {
        AppState {
            souk,
            settings: Arc::new(settings),
            metrics: Arc::new(Metrics::default()),
        }
    }
}
