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

/// Settings of the built-in image APIs (config `[builtins]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinSettings {
    /// The CPU pool's bounds (workers, queue wait, run time).
    pub pool: souk_builtins::pool::PoolLimits,
    /// The deadline of one `img_url` fetch.
    pub fetch_timeout: std::time::Duration,
    /// The most pixels an input image may have (checked from its header before decoding).
    pub image_max_pixels: u64,
    /// The largest input img.superresolution runs its model on; Lanczos3 past it.
    pub superres_model_max_pixels: u64,
}

impl Default for BuiltinSettings {
    fn default() -> Self {
        BuiltinSettings {
            pool: souk_builtins::pool::PoolLimits::default(),
            fetch_timeout: crate::image_fetch::FETCH_TIMEOUT,
            image_max_pixels: souk_builtins::image_input::MAX_PIXELS,
            superres_model_max_pixels: souk_builtins::superres::DEFAULT_MODEL_MAX_PIXELS,
        }
    }
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
    /// The built-in image APIs' settings.
    pub builtins: BuiltinSettings,
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
            builtins: BuiltinSettings::default(),
        }
    }

    /// Sets the address guard of `img_url` fetches: `allow_private` (config `fetch.allow_private`)
    /// lets them reach loopback and private addresses.
    #[must_use]
    pub fn with_image_fetch(mut self, allow_private: bool) -> Self {
        self.images = crate::image_fetch::ImageFetcher::new(allow_private)
            .ok()
            .map(|fetcher| fetcher.with_timeout(self.builtins.fetch_timeout));
        self
    }

    /// Sets the built-in image APIs' settings: a new CPU pool with their bounds, the fetch deadline,
    /// the pixel caps.
    #[must_use]
    pub fn with_builtins(mut self, builtins: BuiltinSettings) -> Self {
        self.cpu = souk_builtins::pool::CpuPool::new(builtins.pool);
        self.images = self.images.map(|fetcher| fetcher.with_timeout(builtins.fetch_timeout));
        self.builtins = builtins;
        self
    }
}
