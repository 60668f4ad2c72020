//! The provider transport over real HTTP: one pooled client, the API's timeout on the whole exchange,
//! no redirects, and a cap on the answer's size.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use reqwest::Url;
use souk_core::provider::{ProviderReply, ProviderRequest, ProviderTransport};

/// The largest provider answer souk reads.
pub const MAX_PROVIDER_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// Parsed upstream bases kept at most (then the cache starts over).
const MAX_CACHED_BASES: usize = 10_000;

/// [`ProviderTransport`] with reqwest.
#[derive(Debug, Clone)]
pub struct HttpTransport {
    client: reqwest::Client,
    /// Upstream URLs up to their query, parsed once: parsing a URL's host (IDNA included) was a
    /// tenth of a call's instructions, and every call to one API shares its base.
    bases: Arc<Mutex<HashMap<String, Url>>>,
}

impl HttpTransport {
    /// A transport with a connection pool.
    pub fn new() -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .tcp_nodelay(true)
            .pool_max_idle_per_host(256)
            .user_agent(concat!("souk/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| format!("cannot build the HTTP client: {err}"))?;
        Ok(HttpTransport {
            client,
            bases: Arc::default(),
        })
    }

    /// `url` parsed, its part before `?` from the cache.
    fn parse(&self, url: &str) -> Result<Url, String> {
        let (base, query) = match url.split_once('?') {
            Some((base, query)) => (base, Some(query)),
            None => (url, None),
        };
        let cached = {
            let bases = self.bases.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            bases.get(base).cloned()
        };
        let mut parsed = match cached {
            Some(parsed) => parsed,
            None => {
                let parsed = Url::parse(base).map_err(|err| format!("bad upstream url: {err}"))?;
                let mut bases = self.bases.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if bases.len() >= MAX_CACHED_BASES {
                    bases.clear();
                }
                bases.insert(base.to_owned(), parsed.clone());
                parsed
            }
        };
        parsed.set_query(query);
        Ok(parsed)
    }
}

#[async_trait]
impl ProviderTransport for HttpTransport {
    async fn post(&self, request: ProviderRequest) -> ProviderReply {
        let exchange = async {
            let url = self.parse(&request.url)?;
            let mut response = self
                .client
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(request.body)
                .send()
                .await
                .map_err(|err| err.without_url().to_string())?;
            let status = response.status().as_u16();
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|err| err.without_url().to_string())? {
                if body.len() + chunk.len() > MAX_PROVIDER_ANSWER_BYTES {
                    return Err(format!("answer larger than {MAX_PROVIDER_ANSWER_BYTES} bytes"));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(ProviderReply::Answered { status, body })
        };
        // The deadline covers connect, send and the whole answer; past it the exchange is dropped,
        // which closes the connection.
        match tokio::time::timeout(request.timeout, exchange).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(why)) => ProviderReply::Failed(why),
            Err(_) => ProviderReply::TimedOut,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_bases_keep_each_calls_own_query() {
        let transport = HttpTransport::new().unwrap();
        let first = transport.parse("http://Example.com:8080/a/b?x=1&sign=A%20B").unwrap();
        let second = transport.parse("http://Example.com:8080/a/b?x=2").unwrap();
        let bare = transport.parse("http://Example.com:8080/a/b").unwrap();
        assert_eq!(first.as_str(), "http://example.com:8080/a/b?x=1&sign=A%20B");
        assert_eq!(second.as_str(), "http://example.com:8080/a/b?x=2");
        assert_eq!(bare.as_str(), "http://example.com:8080/a/b");
        assert_eq!(bare.as_str(), Url::parse("http://Example.com:8080/a/b").unwrap().as_str());
        assert!(transport.parse("not a url?x=1").is_err());
    }
}
