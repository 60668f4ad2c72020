//! The provider transport over real HTTP: one pooled client, the API's timeout on the whole exchange,
//! no redirects, and a cap on the answer's size.

use async_trait::async_trait;
use souk_core::provider::{ProviderReply, ProviderRequest, ProviderTransport};

/// The largest provider answer souk reads.
pub const MAX_PROVIDER_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// [`ProviderTransport`] with reqwest.
#[derive(Debug, Clone)]
pub struct HttpTransport {
    client: reqwest::Client,
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
        Ok(HttpTransport { client })
    }
}

#[async_trait]
impl ProviderTransport for HttpTransport {
    async fn post(&self, request: ProviderRequest) -> ProviderReply {
        let exchange = async {
            let mut response = self
                .client
                .post(&request.url)
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
