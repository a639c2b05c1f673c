//! A key set loaded from a JWKS endpoint and kept fresh.
//!
//! - **Reads are lock-free**: the current [`KeySet`] sits behind an `ArcSwap`; a request
//!   loads it with one atomic operation.
//! - **Background refresh** ([`JwksSource::spawn_refresh`]) re-fetches after the document's
//!   `Cache-Control: max-age`, clamped between a floor and a ceiling.
//! - **Unknown `kid`**: a token naming a key the set does not hold triggers one re-fetch,
//!   shared by every request waiting on it (single-flight), and at most one per cooldown: a
//!   flood of forged kids costs the provider one request per cooldown. The wait is bounded
//!   by the source's own timeout (5 s by default), whatever the fetcher does: when it runs
//!   out, the token is refused as `invalid_token`. The wait needs a tokio runtime.
//! - **Symmetric keys** (`kty: oct`) in the document are skipped unless
//!   [`trust_symmetric_keys`](JwksSourceBuilder::trust_symmetric_keys) says otherwise: the
//!   document is meant to be public, and a public secret signs for anyone.
//! - **Provider down**: a failed fetch keeps the last good keys.
//! - The source never follows `jku`, `x5u`, `x5c` or an embedded `jwk` from a token: the
//!   only URL it fetches is the one your [`JwksFetcher`] knows.
//!
//! The fetch itself goes through [`JwksFetcher`], so you bring your own HTTP client; with the
//! `jwks-hyper` feature, `HyperJwksFetcher` is one built on hyper-util.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use bytes::Bytes;
use futures_util::FutureExt;
use futures_util::future::Shared;

use jsonwebtoken::Algorithm;

use super::key_set::{JwksOptions, KeySet};
use crate::clock::SharedClock;

#[cfg(feature = "jwks-hyper")]
mod hyper_fetcher;
#[cfg(feature = "jwks-hyper")]
pub use self::hyper_fetcher::HyperJwksFetcher;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Fetches the JWKS document. Implement it with your HTTP client.
///
/// ```
/// use std::future::Ready;
/// use tollgate::jwt::{FetchError, JwksDocument, JwksFetcher};
///
/// /// Serves a fixed document (a real fetcher does an HTTP GET).
/// struct Fixed(&'static str);
///
/// impl JwksFetcher for Fixed {
///     type Future = Ready<Result<JwksDocument, FetchError>>;
///
///     fn fetch(&self) -> Self::Future {
///         std::future::ready(Ok(JwksDocument::new(self.0)))
///     }
/// }
/// ```
pub trait JwksFetcher: Send + Sync + 'static {
    /// The fetch in progress.
    type Future: Future<Output = Result<JwksDocument, FetchError>> + Send + 'static;

    /// Starts fetching the document.
    fn fetch(&self) -> Self::Future;
}

/// A fetched JWKS document and how long it may be cached.
#[derive(Debug, Clone)]
pub struct JwksDocument {
    body: Bytes,
    max_age: Option<Duration>,
    algorithms: Option<Vec<Algorithm>>,
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
    /// source's own [`algorithms`](JwksSourceBuilder::algorithms). An empty intersection fails
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

fn max_age(headers: &http::HeaderMap) -> Option<Duration> {
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

/// A key set loaded from a JWKS endpoint and kept fresh. See the [module docs](self).
///
/// Cloning is cheap; clones share the keys and the refresh state.
#[derive(Clone)]
pub struct JwksSource {
    inner: Arc<Inner>,
}

struct Inner {
    keys: ArcSwap<KeySet>,
    fetch: Box<dyn Fn() -> BoxFuture<Result<JwksDocument, FetchError>> + Send + Sync>,
    clock: SharedClock,
    floor: Duration,
    ceiling: Duration,
    cooldown: Duration,
    refetch_timeout: Duration,
    options: JwksOptions,
    /// Whether `options.algorithms` was configured (else RSA keys without `alg` are RS256).
    algorithms_configured: bool,
    state: Mutex<RefetchState>,
}

#[derive(Default)]
struct RefetchState {
    last_forced: Option<SystemTime>,
    in_flight: Option<Shared<BoxFuture<()>>>,
}

impl JwksSource {
    /// Starts a source fetching with `fetcher`: refresh floor 60 s, ceiling 24 h, unknown-kid
    /// cooldown 30 s. It holds no keys until the first [`refresh`](Self::refresh) (or the
    /// first token, which triggers one).
    pub fn builder<F: JwksFetcher>(fetcher: F) -> JwksSourceBuilder {
        JwksSourceBuilder {
            fetch: Box::new(move || Box::pin(fetcher.fetch())),
            clock: crate::clock::system(),
            floor: Duration::from_secs(60),
            ceiling: Duration::from_secs(24 * 3600),
            cooldown: Duration::from_secs(30),
            refetch_timeout: Duration::from_secs(5),
            symmetric: false,
            algorithms: None,
        }
    }

    /// The current keys.
    pub fn keys(&self) -> Arc<KeySet> {
        self.inner.keys.load_full()
    }

    #[inline]
    pub(crate) fn load(&self) -> arc_swap::Guard<Arc<KeySet>> {
        self.inner.keys.load()
    }

    /// Fetches the document now and, if it parses, replaces the keys. Returns how long to
    /// wait before the next refresh (`max-age` clamped to the floor and ceiling).
    ///
    /// # Errors
    ///
    /// If the fetch fails or the document is not a JWKS; the previous keys stay in use.
    pub async fn refresh(&self) -> Result<Duration, FetchError> {
        refresh(&self.inner).await
    }

    /// Spawns a tokio task that refreshes the keys for as long as any clone of this source
    /// lives: after `max-age` (clamped) on success, after the floor on failure.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn spawn_refresh(&self) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            loop {
                let Some(inner) = weak.upgrade() else { return };
                let delay = refresh_logged(&inner).await.unwrap_or(inner.floor);
                drop(inner);
                tokio::time::sleep(delay).await;
            }
        })
    }

    /// For a token naming an unknown `kid`: the shared re-fetch to wait for, or `None` when
    /// one ran less than a cooldown ago.
    pub(crate) fn refetch_for_unknown_kid(&self) -> Option<Shared<BoxFuture<()>>> {
        let mut state = self
            .inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(in_flight) = &state.in_flight {
            return Some(in_flight.clone());
        }
        let now = self.inner.clock.now();
        if let Some(last) = state.last_forced {
            // A cooldown too long to add never ends.
            let cooling = last
                .checked_add(self.inner.cooldown)
                .is_none_or(|end| now < end);
            if cooling && now >= last {
                return None;
            }
        }
        state.last_forced = Some(now);
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let timeout = self.inner.refetch_timeout;
        let future: BoxFuture<()> = Box::pin(async move {
            if let Some(inner) = weak.upgrade() {
                // Bounded whatever the fetcher does; on timeout the fetch is dropped.
                if tokio::time::timeout(timeout, refresh_logged(&inner))
                    .await
                    .is_err()
                {
                    log_warn!("JWKS re-fetch for an unknown kid timed out; abandoned");
                }
                inner
                    .state
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .in_flight = None;
            }
        });
        let shared = future.shared();
        state.in_flight = Some(shared.clone());
        Some(shared)
    }
}

/// [`refresh`], with a WARN line (target `tollgate::store`, `tracing` feature) on failure.
async fn refresh_logged(inner: &Inner) -> Result<Duration, FetchError> {
    let result = refresh(inner).await;
    #[cfg(feature = "tracing")]
    if let Err(error) = &result {
        log_warn!(%error, "JWKS refresh failed; the last good keys stay in use");
    }
    result
}

async fn refresh(inner: &Inner) -> Result<Duration, FetchError> {
    let document = (inner.fetch)().await?;
    let options = options_for(inner, document.algorithms.as_deref())?;
    let keys = super::key_set::parse_jwks(&document.body, &options)
        .map_err(|_| FetchError::new("the document is not a JWKS"))?;
    let keys = keys.reuse_unchanged(&inner.keys.load());
    inner.keys.store(Arc::new(keys));
    Ok(document
        .max_age
        .unwrap_or(inner.floor)
        .clamp(inner.floor, inner.ceiling))
}

/// The parse options for one document: the source's, narrowed to what the provider
/// advertises.
fn options_for(inner: &Inner, advertised: Option<&[Algorithm]>) -> Result<JwksOptions, FetchError> {
    let Some(advertised) = advertised else {
        return Ok(inner.options.clone());
    };
    let allowed: Vec<Algorithm> = match &inner.options.algorithms {
        Some(configured) => configured
            .iter()
            .copied()
            .filter(|alg| advertised.contains(alg))
            .collect(),
        None => advertised.to_vec(),
    };
    if allowed.is_empty() {
        return Err(FetchError::new(
            "the provider advertises none of the allowed algorithms",
        ));
    }
    let mut options = inner.options.clone();
    options.rsa_without_alg.retain(|alg| allowed.contains(alg));
    if options.rsa_without_alg.is_empty() && !inner.algorithms_configured {
        options.rsa_without_alg = allowed
            .iter()
            .copied()
            .filter(|alg| super::keys::is_rsa(*alg))
            .take(1)
            .collect();
    }
    options.algorithms = Some(allowed);
    Ok(options)
}

impl fmt::Debug for JwksSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksSource")
            .field("keys", &self.inner.keys.load().len())
            .field("floor", &self.inner.floor)
            .field("ceiling", &self.inner.ceiling)
            .field("cooldown", &self.inner.cooldown)
            .finish_non_exhaustive()
    }
}

/// Configures a [`JwksSource`]; see [`JwksSource::builder`].
#[must_use]
pub struct JwksSourceBuilder {
    fetch: Box<dyn Fn() -> BoxFuture<Result<JwksDocument, FetchError>> + Send + Sync>,
    clock: SharedClock,
    floor: Duration,
    ceiling: Duration,
    cooldown: Duration,
    refetch_timeout: Duration,
    symmetric: bool,
    algorithms: Option<Vec<Algorithm>>,
}

impl JwksSourceBuilder {
    /// The algorithms this source's keys may verify; keys published for others are skipped.
    /// By default any algorithm the keys name, and `RS256` for an RSA key published without
    /// `alg` (as Entra ID does); once set, such a key serves each RSA algorithm listed.
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = Some(algorithms.into_iter().collect());
        self
    }

    /// The shortest wait between background refreshes, whatever `max-age` says (default 60 s).
    /// Also the retry delay after a failed fetch.
    pub fn refresh_floor(mut self, floor: Duration) -> Self {
        self.floor = floor;
        self
    }

    /// The longest wait between background refreshes (default 24 h).
    pub fn refresh_ceiling(mut self, ceiling: Duration) -> Self {
        self.ceiling = ceiling;
        self
    }

    /// The least time between two re-fetches triggered by unknown kids (default 30 s).
    pub fn unknown_kid_cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// How long a request naming an unknown `kid` waits for the re-fetch it triggered
    /// (default 5 s), whatever the fetcher does. When it runs out, the re-fetch is abandoned
    /// (the next one may start after the cooldown) and the request is refused as
    /// `invalid_token`.
    ///
    /// # Panics
    ///
    /// If `timeout` is zero.
    pub fn unknown_kid_timeout(mut self, timeout: Duration) -> Self {
        assert!(!timeout.is_zero(), "a zero timeout abandons every re-fetch");
        self.refetch_timeout = timeout;
        self
    }

    /// Trusts symmetric (`kty: oct`) keys found in the document. Off by default: a JWKS
    /// document is meant to be public, and anyone who can read a symmetric key can sign with
    /// it (RFC 8725 §3.1). Only for a document as secret as the keys, from an endpoint you
    /// control; prefer [`JwtKey::hmac`](super::JwtKey::hmac) for shared secrets.
    pub fn trust_symmetric_keys(mut self) -> Self {
        self.symmetric = true;
        self
    }

    /// The clock the cooldown is measured on (default: the system clock).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Builds the source (with no keys yet).
    pub fn build(self) -> JwksSource {
        let ceiling = self.ceiling.max(self.floor);
        JwksSource {
            inner: Arc::new(Inner {
                keys: ArcSwap::from_pointee(KeySet::new()),
                fetch: self.fetch,
                clock: self.clock,
                floor: self.floor,
                ceiling,
                cooldown: self.cooldown,
                refetch_timeout: self.refetch_timeout,
                algorithms_configured: self.algorithms.is_some(),
                options: JwksOptions {
                    symmetric: self.symmetric,
                    rsa_without_alg: match &self.algorithms {
                        Some(algs) => algs
                            .iter()
                            .copied()
                            .filter(|alg| super::keys::is_rsa(*alg))
                            .collect(),
                        None => vec![Algorithm::RS256],
                    },
                    algorithms: self.algorithms,
                },
                state: Mutex::new(RefetchState::default()),
            }),
        }
    }
}

impl fmt::Debug for JwksSourceBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksSourceBuilder")
            .field("floor", &self.floor)
            .field("ceiling", &self.ceiling)
            .field("cooldown", &self.cooldown)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A fetcher serving a fixed document with `max-age=120`, counting fetches.
    struct Fixed(Arc<AtomicUsize>);

    impl JwksFetcher for Fixed {
        type Future = std::future::Ready<Result<JwksDocument, FetchError>>;

        fn fetch(&self) -> Self::Future {
            self.0.fetch_add(1, Ordering::SeqCst);
            std::future::ready(Ok(JwksDocument::new(
                r#"{"keys":[{"kty":"oct","kid":"a","alg":"HS256","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}]}"#,
            )
            .with_max_age(Some(Duration::from_secs(120)))))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn background_refresh_follows_max_age_and_stops_with_the_source() {
        let fetches = Arc::new(AtomicUsize::new(0));
        let source = JwksSource::builder(Fixed(Arc::clone(&fetches)))
            .refresh_floor(Duration::from_secs(60))
            .trust_symmetric_keys()
            .build();
        let task = source.spawn_refresh();
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        assert_eq!(source.keys().len(), 1);
        tokio::time::sleep(Duration::from_secs(118)).await; // t = 119 s
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_secs(2)).await; // t = 121 s
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
        drop(source);
        tokio::time::sleep(Duration::from_secs(240)).await;
        assert!(task.is_finished(), "the task ends once the source is gone");
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn symmetric_keys_only_when_trusted() {
        let fetches = Arc::new(AtomicUsize::new(0));
        let source = JwksSource::builder(Fixed(Arc::clone(&fetches))).build();
        source.refresh().await.unwrap();
        assert_eq!(source.keys().len(), 0, "the oct key is skipped by default");
    }

    #[test]
    fn cache_control_max_age() {
        let cases = [
            ("max-age=300", Some(300)),
            ("public, max-age=60, must-revalidate", Some(60)),
            ("MAX-AGE=7", Some(7)),
            ("no-store", Some(0)),
            ("public", None),
            ("max-age=abc", None),
        ];
        for (value, expected) in cases {
            let mut headers = http::HeaderMap::new();
            headers.insert(http::header::CACHE_CONTROL, value.parse().unwrap());
            assert_eq!(
                max_age(&headers),
                expected.map(Duration::from_secs),
                "{value}"
            );
        }
    }
}
