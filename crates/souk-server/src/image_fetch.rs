//! The guarded fetch of a caller's `img_url` (`wire.md` §2 image inputs, §6 outbound fetches): http
//! and https only, names resolved through the cloud gateway's [`GuardedResolver`] (loopback, private,
//! link-local and metadata addresses refused unless `fetch.allow_private`), IP literals checked with
//! [`is_public`] before anything is sent, redirects followed at most [`MAX_REDIRECTS`] times and never
//! to a refused literal address (named targets go through the same resolver), no proxy, a deadline
//! over the whole exchange, and the body read through a size cap. Every failure is 101000.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::redirect::{Attempt, Policy};
use reqwest::Url;
use souk_builtins::image_input::MAX_INPUT_BYTES;
use souk_core::Failure;
use souk_types::Code;

use crate::cloud_transport::{is_public, GuardedResolver};

/// Redirects followed.
pub const MAX_REDIRECTS: usize = 3;
/// The deadline of one fetch, connect to last byte.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// A client for `img_url`s.
#[derive(Debug, Clone)]
pub struct ImageFetcher {
    client: reqwest::Client,
    allow_private: bool,
    max_bytes: usize,
    timeout: Duration,
}

impl ImageFetcher {
    /// A fetcher; `allow_private` lifts the address guard (local development and tests).
    pub fn new(allow_private: bool) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver::new(allow_private)))
            .no_proxy()
            .redirect(Policy::custom(move |attempt| redirect(attempt, allow_private)))
            .referer(false)
            .user_agent(concat!("souk/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| format!("cannot build the image fetch client: {err}"))?;
        Ok(ImageFetcher {
            client,
            allow_private,
            max_bytes: MAX_INPUT_BYTES,
            timeout: FETCH_TIMEOUT,
        })
    }

    /// The same fetcher with another deadline over one whole fetch.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The bytes at `url`, or 101000 saying why not (never echoing the URL).
    pub async fn fetch(&self, url: &str) -> Result<Bytes, Failure> {
        let url = Url::parse(url).map_err(|_| invalid("img_url is not a URL"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid("img_url must be http or https"));
        }
        if !literal_allowed(&url, self.allow_private) {
            return Err(invalid("img_url's address is not a public address"));
        }
        match tokio::time::timeout(self.timeout, self.exchange(url)).await {
            Ok(result) => result,
            Err(_) => Err(invalid("img_url did not answer in time")),
        }
    }

    async fn exchange(&self, url: Url) -> Result<Bytes, Failure> {
        let mut response = self.client.get(url).send().await.map_err(|err| {
            tracing::debug!(error = %err, "img_url fetch failed");
            invalid("img_url could not be fetched (refused address, unreachable host or redirect)")
        })?;
        if !response.status().is_success() {
            return Err(invalid(&format!("img_url answered HTTP {}", response.status().as_u16())));
        }
        let too_large = || invalid(&format!("the image at img_url is larger than {} bytes", self.max_bytes));
        if response.content_length().is_some_and(|length| length > self.max_bytes as u64) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|_| invalid("img_url's answer broke off"))? {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(body))
    }
}

fn invalid(why: &str) -> Failure {
    Failure::new(Code::ImageUrlInvalid, why.to_owned())
}

/// Whether an IP-literal host may be called (names are checked by the resolver).
fn literal_allowed(url: &Url, allow_private: bool) -> bool {
    if allow_private {
        return true;
    }
    let Some(host) = url.host_str() else {
        return false;
    };
    match host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        Ok(ip) => is_public(ip),
        Err(_) => true,
    }
}

fn redirect(attempt: Attempt<'_>, allow_private: bool) -> reqwest::redirect::Action {
    if attempt.previous().len() > MAX_REDIRECTS {
        return attempt.stop();
    }
    let url = attempt.url();
    if !matches!(url.scheme(), "http" | "https") || !literal_allowed(url, allow_private) {
        return attempt.stop();
    }
    attempt.follow()
}
