//! The fetched document ([`JwksDocument`]) and why a fetch failed ([`FetchError`]).

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use jsonwebtoken::Algorithm;

/// A fetched JWKS document and how long it may be cached.
#[derive(Debug, Clone)]
pub struct JwksDocument {
    pub(super) body: Bytes,
    pub(super) max_age: Option<Duration>,
    pub(super) algorithms: Option<Vec<Algorithm>>,
}

impl JwksDocument {
    /// A document with no caching information.
    pub fn new(body: impl Into<Bytes>) -> Self {
        Self {
            body: body.into(),
            max_age: None,
            algorithms: None,
        }
    }

    /// A document with the caching information of the response headers
    /// (`Cache-Control: max-age`; `no-store`/`no-cache` count as zero, so the floor applies).
    pub fn from_response(headers: &http::HeaderMap, body: impl Into<Bytes>) -> Self {
        Self {
            body: body.into(),
            max_age: max_age(headers),
            algorithms: None,
        }
    }

    /// Sets how long the document may be cached.
    #[must_use]
    pub fn with_max_age(mut self, max_age: Option<Duration>) -> Self {
        self.max_age = max_age;
        self
    }

    /// How long the document may be cached, if the provider said.
    pub fn max_age(&self) -> Option<Duration> {
        self.max_age
    }

    /// Restricts the document's keys to the algorithms the provider advertises (e.g. its
    /// discovery document's `id_token_signing_alg_values_supported`), intersected with the
    /// source's own [`algorithms`](super::JwksSourceBuilder::algorithms). An empty intersection fails
    /// the refresh, keeping the last good keys.
    #[must_use]
    pub fn with_algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = Some(algorithms.into_iter().collect());
        self
    }

    /// The algorithms the provider advertises, if the fetcher said.
    pub fn algorithms(&self) -> Option<&[Algorithm]> {
        self.algorithms.as_deref()
    }
}

pub(super) fn max_age(headers: &http::HeaderMap) -> Option<Duration> {
    let mut out = None;
    for value in headers.get_all(http::header::CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',') {
            let directive = directive.trim();
            if directive.eq_ignore_ascii_case("no-store")
                || directive.eq_ignore_ascii_case("no-cache")
            {
                return Some(Duration::ZERO);
            }
            let Some((name, secs)) = directive.split_once('=') else {
                continue;
            };
            if name.trim().eq_ignore_ascii_case("max-age") {
                if let Ok(secs) = secs.trim().trim_matches('"').parse::<u64>() {
                    out = Some(Duration::from_secs(secs));
                }
            }
        }
    }
    out
}

/// Why fetching or reading the JWKS failed. Carries the fetcher's error as its source.
#[derive(Debug)]
pub struct FetchError(Box<dyn std::error::Error + Send + Sync>);

impl FetchError {
    /// Wraps the fetcher's own error.
    pub fn new(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self(error.into())
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fetching the JWKS failed: {}", self.0)
    }
}

impl std::error::Error for FetchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}
