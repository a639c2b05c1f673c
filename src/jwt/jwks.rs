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
use futures_util::FutureExt;
use futures_util::future::Shared;

use jsonwebtoken::Algorithm;

use super::key_set::{JwksOptions, KeySet};
use crate::clock::SharedClock;

mod document;
#[cfg(feature = "jwks-hyper")]
mod hyper_fetcher;

pub use self::document::{FetchError, JwksDocument};
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
        self.spawn_refresh_after(Duration::ZERO)
    }

    /// [`spawn_refresh`](Self::spawn_refresh), the first refresh after `first` (the delay
    /// a [`refresh`](Self::refresh) just made returned): one fetch at start-up, not two.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn spawn_refresh_after(&self, first: Duration) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            tokio::time::sleep(first).await;
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
    let result = load(inner).await;
    crate::observe::metrics::jwks_fetch(result.is_ok());
    result
}

async fn load(inner: &Inner) -> Result<Duration, FetchError> {
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
mod tests;
