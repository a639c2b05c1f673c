//! OpenID Connect Discovery (and RFC 8414) for one issuer, and the JWKS fetcher it feeds.

use std::fmt;
use std::sync::{Arc, Mutex};

use jsonwebtoken::Algorithm;
use serde::Deserialize;

use super::client::{HttpClient, Status};
use crate::jwt::{FetchError, JwksDocument, JwksFetcher, JwksSource, JwksSourceBuilder, Provider};

/// What an issuer's discovery document says, once checked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProviderMetadata {
    /// The issuer, equal to the configured one.
    pub issuer: String,
    /// Where its keys are published.
    pub jwks_uri: http::Uri,
    /// The signing algorithms it advertises (`id_token_signing_alg_values_supported`), those
    /// this crate knows; `None` when the document lists none.
    pub algorithms: Option<Vec<Algorithm>>,
    /// Its token endpoint, if it has one.
    pub token_endpoint: Option<String>,
}

/// Why discovery failed. The message names the issuer, never a token or a key.
#[derive(Debug)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// The configured issuer is not an absolute `http(s)` URL.
    InvalidIssuer,
    /// Fetching the discovery document or the keys failed.
    Fetch(FetchError),
    /// The document is not a JSON object with the members discovery needs.
    InvalidDocument(&'static str),
    /// The document names another issuer (OpenID Connect Discovery §4.3, RFC 8414 §3.3).
    IssuerMismatch {
        /// The configured issuer.
        expected: String,
        /// The document's.
        found: String,
    },
    /// The `jwks_uri` is unusable: another scheme than the issuer's, or a URL the client
    /// may not fetch.
    JwksUri(String),
}

impl fmt::Display for DiscoveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidIssuer => f.write_str("the issuer is not an absolute http(s) URL"),
            Self::Fetch(error) => write!(f, "discovery failed: {error}"),
            Self::InvalidDocument(what) => write!(f, "invalid discovery document: {what}"),
            Self::IssuerMismatch { expected, found } => write!(
                f,
                "the discovery document of {expected:?} names the issuer {found:?}"
            ),
            Self::JwksUri(why) => write!(f, "unusable jwks_uri: {why}"),
        }
    }
}

impl std::error::Error for DiscoveryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Fetch(error) => Some(error),
            _ => None,
        }
    }
}

impl From<DiscoveryError> for FetchError {
    fn from(error: DiscoveryError) -> Self {
        match error {
            DiscoveryError::Fetch(error) => error,
            other => FetchError::new(other.to_string()),
        }
    }
}

#[derive(Deserialize)]
struct Document {
    issuer: String,
    jwks_uri: String,
    #[serde(default)]
    id_token_signing_alg_values_supported: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    token_endpoint: Option<String>,
}

/// Fetches and checks `issuer`'s metadata: `{issuer}/.well-known/openid-configuration`,
/// then RFC 8414's `/.well-known/oauth-authorization-server{path}` if the first is not found.
pub(crate) async fn metadata(
    client: &HttpClient,
    issuer: &str,
) -> Result<ProviderMetadata, DiscoveryError> {
    let (oidc, oauth) = well_known(issuer)?;
    let body = match client.get(&oidc).await {
        Ok((_, body)) => body,
        Err(error) if is_not_found(&error) => {
            client.get(&oauth).await.map_err(DiscoveryError::Fetch)?.1
        }
        Err(error) => return Err(DiscoveryError::Fetch(error)),
    };
    check(client, issuer, &body)
}

fn is_not_found(error: &FetchError) -> bool {
    std::error::Error::source(error)
        .and_then(|e| e.downcast_ref::<Status>())
        .is_some_and(|s| s.0 == http::StatusCode::NOT_FOUND)
}

/// The two well-known URLs of `issuer`.
fn well_known(issuer: &str) -> Result<(http::Uri, http::Uri), DiscoveryError> {
    let uri: http::Uri = issuer.parse().map_err(|_| DiscoveryError::InvalidIssuer)?;
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return Err(DiscoveryError::InvalidIssuer);
    };
    if !matches!(scheme, "https" | "http") || uri.query().is_some() {
        return Err(DiscoveryError::InvalidIssuer);
    }
    let path = uri.path().trim_end_matches('/');
    let oidc = format!("{scheme}://{authority}{path}/.well-known/openid-configuration");
    let oauth = format!("{scheme}://{authority}/.well-known/oauth-authorization-server{path}");
    let parse = |s: String| s.parse().map_err(|_| DiscoveryError::InvalidIssuer);
    Ok((parse(oidc)?, parse(oauth)?))
}

/// Checks a fetched document against the configured issuer.
pub(crate) fn check(
    client: &HttpClient,
    issuer: &str,
    body: &[u8],
) -> Result<ProviderMetadata, DiscoveryError> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(DiscoveryError::InvalidDocument("not a JSON object"));
    }
    let document: Document = serde_json::from_slice(body)
        .map_err(|_| DiscoveryError::InvalidDocument("no issuer and jwks_uri strings"))?;
    if document.issuer != issuer {
        return Err(DiscoveryError::IssuerMismatch {
            expected: issuer.to_owned(),
            found: document.issuer,
        });
    }
    let jwks_uri: http::Uri = document
        .jwks_uri
        .parse()
        .map_err(|_| DiscoveryError::JwksUri("not a URL".to_owned()))?;
    let issuer_scheme = issuer.split_once("://").map(|(s, _)| s);
    if jwks_uri.scheme_str() != issuer_scheme {
        return Err(DiscoveryError::JwksUri(format!(
            "scheme {:?} differs from the issuer's",
            jwks_uri.scheme_str().unwrap_or("")
        )));
    }
    client
        .check_uri(&jwks_uri)
        .map_err(|e| DiscoveryError::JwksUri(e.to_string()))?;
    let algorithms = document
        .id_token_signing_alg_values_supported
        .map(|values| {
            values
                .iter()
                .filter_map(serde_json::Value::as_str)
                .filter_map(algorithm)
                .collect()
        });
    Ok(ProviderMetadata {
        issuer: document.issuer,
        jwks_uri,
        algorithms,
        token_endpoint: document.token_endpoint,
    })
}

/// The signature algorithms a JWT layer verifies (never `none`, never HMAC from a provider:
/// its keys are published).
fn algorithm(name: &str) -> Option<Algorithm> {
    Some(match name {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" | "Ed25519" => Algorithm::EdDSA,
        _ => return None,
    })
}

/// Configures discovery for one issuer; [`discover`](Self::discover) or
/// [`lazy`](Self::lazy) turn it into a [`Provider`] whose keys stay fresh.
///
/// ```no_run
/// use tollgate::jwt::{ClaimMapping, JwtLayer};
/// use tollgate::oidc::Discovery;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let keycloak = Discovery::new("https://sso.example/realms/acme")
///     .discover()
///     .await?
///     .audience("orders-api")
///     .claim_mapping(ClaimMapping::keycloak("orders-api"));
/// let layer = JwtLayer::with_providers([keycloak]).build()?;
/// # let _ = layer;
/// # Ok(()) }
/// ```
#[must_use]
pub struct Discovery {
    issuer: String,
    client: HttpClient,
    algorithms: Option<Vec<Algorithm>>,
    configure: Box<dyn FnOnce(JwksSourceBuilder) -> JwksSourceBuilder + Send>,
}

impl Discovery {
    /// Discovery for `issuer`, compared exactly with the document's `issuer` (so write it as
    /// the provider does, trailing slash or not), on [`HttpClient::new`].
    pub fn new(issuer: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            client: HttpClient::new(),
            algorithms: None,
            configure: Box::new(|builder| builder),
        }
    }

    /// Fetches with `client` (your roots, CA, timeout).
    pub fn client(mut self, client: HttpClient) -> Self {
        self.client = client;
        self
    }

    /// The algorithms accepted from this provider, intersected with those it advertises
    /// (default: every asymmetric algorithm it advertises).
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = Some(algorithms.into_iter().collect());
        self
    }

    /// Adjusts the [`JwksSource`] that keeps the keys (refresh floor and ceiling, unknown-kid
    /// cooldown and timeout).
    pub fn jwks(
        mut self,
        configure: impl FnOnce(JwksSourceBuilder) -> JwksSourceBuilder + Send + 'static,
    ) -> Self {
        self.configure = Box::new(configure);
        self
    }

    /// Fetches the metadata now.
    ///
    /// # Errors
    ///
    /// As [`discover`](Self::discover).
    pub async fn metadata(&self) -> Result<ProviderMetadata, DiscoveryError> {
        metadata(&self.client, &self.issuer).await
    }

    /// Discovers the provider and loads its keys now, then keeps them fresh in a background
    /// task (for as long as the provider lives). Needs a tokio runtime.
    ///
    /// # Errors
    ///
    /// The first failure: the issuer is not a URL, a document cannot be fetched or does not
    /// check out, or the keys cannot be loaded.
    pub async fn discover(self) -> Result<Provider, DiscoveryError> {
        let first = metadata(&self.client, &self.issuer).await?;
        let (provider, source) = self.build(Some(first));
        let next = source.refresh().await.map_err(DiscoveryError::Fetch)?;
        source.spawn_refresh_after(next);
        Ok(provider)
    }

    /// The provider at once; discovery and the keys follow in a background task, retried
    /// after the refresh floor while they fail (each failure logged with the `tracing`
    /// feature). Until the keys arrive, its tokens are refused (`401 invalid_token`). Needs
    /// a tokio runtime.
    pub fn lazy(self) -> Provider {
        let (provider, source) = self.build(None);
        source.spawn_refresh();
        provider
    }

    fn build(self, first: Option<ProviderMetadata>) -> (Provider, JwksSource) {
        let fetcher = DiscoveryFetcher {
            issuer: Arc::from(self.issuer.as_str()),
            client: self.client,
            metadata: Arc::new(Mutex::new(first)),
        };
        let mut builder = JwksSource::builder(fetcher);
        if let Some(algorithms) = self.algorithms {
            builder = builder.algorithms(algorithms);
        }
        let source = (self.configure)(builder).build();
        (Provider::new(&self.issuer, source.clone()), source)
    }
}

impl fmt::Debug for Discovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Discovery")
            .field("issuer", &self.issuer)
            .field("client", &self.client)
            .field("algorithms", &self.algorithms)
            .finish_non_exhaustive()
    }
}

/// Fetches the JWKS the discovery document names, discovering first when it has no
/// metadata, or lost it to a failed fetch (a provider that moved its keys).
struct DiscoveryFetcher {
    issuer: Arc<str>,
    client: HttpClient,
    metadata: Arc<Mutex<Option<ProviderMetadata>>>,
}

impl JwksFetcher for DiscoveryFetcher {
    type Future =
        std::pin::Pin<Box<dyn Future<Output = Result<JwksDocument, FetchError>> + Send + 'static>>;

    fn fetch(&self) -> Self::Future {
        let issuer = Arc::clone(&self.issuer);
        let client = self.client.clone();
        let slot = Arc::clone(&self.metadata);
        Box::pin(async move {
            let known = slot
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            let meta = match known {
                Some(meta) => meta,
                None => {
                    let meta = metadata(&client, &issuer).await?;
                    *slot
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(meta.clone());
                    meta
                }
            };
            match client.get(&meta.jwks_uri).await {
                Ok((headers, body)) => {
                    let document = JwksDocument::from_response(&headers, body);
                    Ok(match meta.algorithms {
                        Some(algorithms) => document.with_algorithms(algorithms),
                        None => document,
                    })
                }
                Err(error) => {
                    // Discover again next time: the keys may have moved.
                    *slot
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
                    Err(error)
                }
            }
        })
    }
}

#[cfg(test)]
mod tests;
