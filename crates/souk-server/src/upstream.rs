//! The provider transport over real HTTP: one pooled client, the API's timeout on the whole exchange,
//! no redirects, and a cap on the answer's size.
//!
//! It is hyper-util's client, not reqwest: a provider call needs none of reqwest's layers (redirects,
//! decompression, its own URL type, which it parses and turns back into a URI for hyper), and
//! dropping them raised the embedded default's sync invoke by about 15% in requests/s.

use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Bytes;
use axum::http::header::{HeaderValue, CONTENT_TYPE, USER_AGENT};
use axum::http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use souk_core::provider::{ProviderReply, ProviderRequest, ProviderTransport};

/// The largest provider answer souk reads.
pub const MAX_PROVIDER_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// Idle connections kept per provider host.
const IDLE_PER_HOST: usize = 256;

/// [`ProviderTransport`] over hyper-util's pooled client (HTTP/1.1; `https` with rustls and the
/// webpki roots).
#[derive(Debug, Clone)]
pub struct HttpTransport {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    user_agent: HeaderValue,
}

impl HttpTransport {
    /// A transport with a connection pool.
    pub fn new() -> Result<Self, String> {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        // The scheme is the TLS layer's to check: it takes `http` and `https`.
        http.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(Arc::new(rustls::crypto::ring::default_provider()))
            .map_err(|err| format!("cannot set up TLS for the HTTP client: {err}"))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(IDLE_PER_HOST)
            .build(connector);
        Ok(HttpTransport {
            client,
            user_agent: HeaderValue::from_static(concat!("souk/", env!("CARGO_PKG_VERSION"))),
        })
    }

    /// The request for `url` (absolute, `http` or `https`).
    fn request(&self, url: &str, body: Vec<u8>) -> Result<Request<Full<Bytes>>, String> {
        let uri: Uri = url.parse().map_err(|err| format!("bad upstream url: {err}"))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err("bad upstream url: not an absolute http or https URL".into());
        }
        Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(USER_AGENT, self.user_agent.clone())
            .body(Full::new(Bytes::from(body)))
            .map_err(|err| format!("bad upstream request: {err}"))
    }
}

/// An error and its causes, `a: b: c`, as far as they say something new ("client error (Connect):
/// tcp connect error: Connection refused"). Both HTTP clients' errors are described with it.
pub(crate) fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

#[async_trait]
impl ProviderTransport for HttpTransport {
    async fn post(&self, request: ProviderRequest) -> ProviderReply {
        let exchange = async {
            let outgoing = self.request(&request.url, request.body)?;
            let response = self.client.request(outgoing).await.map_err(|err| describe(&err))?;
            let status = response.status().as_u16();
            let body = Limited::new(response.into_body(), MAX_PROVIDER_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|err| {
                    if err.is::<http_body_util::LengthLimitError>() {
                        format!("answer larger than {MAX_PROVIDER_ANSWER_BYTES} bytes")
                    } else {
                        describe(err.as_ref())
                    }
                })?
                .to_bytes();
            Ok(ProviderReply::Answered {
                status,
                body: body.to_vec(),
            })
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
    fn requests_keep_the_whole_url_and_refuse_what_is_not_one() {
        let transport = HttpTransport::new().unwrap();
        let request = transport
            .request("http://Example.com:8080/a/b?x=1&sign=A%20B", b"{}".to_vec())
            .unwrap();
        assert_eq!(request.uri().to_string(), "http://Example.com:8080/a/b?x=1&sign=A%20B");
        assert_eq!(request.method(), Method::POST);
        assert_eq!(request.headers()[CONTENT_TYPE], "application/json");
        assert!(transport.request("https://example.com/x", Vec::new()).is_ok());
        for bad in ["not a url?x=1", "/relative/path", "ftp://example.com/x", "http://exa mple.com/"] {
            assert!(transport.request(bad, Vec::new()).is_err(), "{bad}");
        }
    }
}
