//! A [`JwksFetcher`] on hyper-util's client (feature `jwks-hyper`).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::rt::TokioExecutor;

use super::{FetchError, JwksDocument, JwksFetcher};

/// Fetches a JWKS document with hyper-util's client: a GET with a timeout (10 s) and a body
/// size limit (256 KiB), keeping the response's `Cache-Control` for the refresh schedule.
///
/// [`HyperJwksFetcher::http`] speaks plain HTTP (a sidecar, a local identity provider). For
/// HTTPS, build a client with a TLS connector (hyper-rustls, hyper-tls) and pass it to
/// [`HyperJwksFetcher::with_client`].
pub struct HyperJwksFetcher<C = HttpConnector> {
    client: Client<C, Empty<Bytes>>,
    uri: http::Uri,
    timeout: Duration,
    max_body: usize,
}

impl HyperJwksFetcher {
    /// A plain-HTTP fetcher for `uri`.
    ///
    /// # Panics
    ///
    /// Only when a fetch starts outside a tokio runtime.
    pub fn http(uri: http::Uri) -> Self {
        Self::with_client(Client::builder(TokioExecutor::new()).build_http(), uri)
    }
}

impl<C> HyperJwksFetcher<C> {
    /// A fetcher for `uri` on your `client` (e.g. with a TLS connector).
    pub fn with_client(client: Client<C, Empty<Bytes>>, uri: http::Uri) -> Self {
        Self {
            client,
            uri,
            timeout: Duration::from_secs(10),
            max_body: 256 * 1024,
        }
    }

    /// How long a fetch may take, headers and body (default 10 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The largest document accepted (default 256 KiB).
    #[must_use]
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }
}

impl<C> JwksFetcher for HyperJwksFetcher<C>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    type Future = Pin<Box<dyn Future<Output = Result<JwksDocument, FetchError>> + Send>>;

    fn fetch(&self) -> Self::Future {
        let client = self.client.clone();
        let uri = self.uri.clone();
        let max_body = self.max_body;
        let timeout = self.timeout;
        Box::pin(async move {
            let fetch = async move {
                let response = client.get(uri).await.map_err(FetchError::new)?;
                if !response.status().is_success() {
                    return Err(FetchError::new(format!(
                        "the JWKS endpoint answered {}",
                        response.status()
                    )));
                }
                let (parts, body) = response.into_parts();
                let body = Limited::new(body, max_body)
                    .collect()
                    .await
                    .map_err(FetchError::new)?
                    .to_bytes();
                Ok(JwksDocument::from_response(&parts.headers, body))
            };
            tokio::time::timeout(timeout, fetch)
                .await
                .map_err(|_| FetchError::new("the JWKS fetch timed out"))?
        })
    }
}

impl<C> fmt::Debug for HyperJwksFetcher<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HyperJwksFetcher")
            .field("uri", &self.uri)
            .field("timeout", &self.timeout)
            .field("max_body", &self.max_body)
            .finish_non_exhaustive()
    }
}
