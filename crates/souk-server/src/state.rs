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
    /// The bounded blocking pool every image decode, scan and encode runs on.
    pub cpu: souk_builtins::pool::CpuPool,
    /// The guarded client of `img_url` fetches (private addresses refused unless
    /// [`AppState::with_image_fetch`] allows them); `None` if it could not be built.
    pub images: Option<crate::image_fetch::ImageFetcher>,
}

impl AppState {
    /// A state around a domain context.
    pub fn new(souk: Arc<Souk>, settings: ServerSettings) -> Self {
        AppState {
            souk,
            settings: Arc::new(settings),
            metrics: Arc::new(Metrics::default()),
            cpu: souk_builtins::pool::CpuPool::default(),
            images: crate::image_fetch::ImageFetcher::new(false).ok(),
        }
    }

    /// Sets the address guard of `img_url` fetches: `allow_private` (config `fetch.allow_private`)
    /// lets them reach loopback and private addresses.
    #[must_use]
    pub fn with_image_fetch(mut self, allow_private: bool) -> Self {
        self.images = crate::image_fetch::ImageFetcher::new(allow_private).ok();
        self
    }
}
