use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tower_layer::Layer;

use super::config::{Config, Quotas, RateObserve};
use super::headers::{self, HeaderMode};
use super::key::{AppKeyId, ClientIp, KeyExtractor, OnMissingKey};
use super::service::KeyedRateLimit;
use super::store::{MAX_LIMITS, OnStoreError, RateLimitStore};
use super::{ConfigError, Limit, MemoryStore};
use crate::Quota;
use crate::clock::SharedClock;
use crate::rejection::{DefaultResponder, Flavor, RequestHead};

/// The default bound on an asynchronous store's answer.
const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_millis(200);

/// Limits requests per key in clock-aligned fixed windows. See the [module docs](super).
///
/// Not to be confused with `tower::limit::RateLimitLayer`, which delays *all* requests of a
/// service through backpressure: this layer counts each key separately and answers a key over
/// its quota with 429 (or gRPC `RESOURCE_EXHAUSTED`), never holding back readiness.
///
/// The layer is its own builder. Type parameters: the key extractor `K`, the store `St` and the
/// rejection responder `R`, defaulting to the API key id, the in-memory store and the
/// [`DefaultResponder`].
#[must_use]
pub struct RateLimitLayer<K = AppKeyId, St = MemoryStore, R = DefaultResponder> {
    config: Config<K, St, R>,
}

impl<K: Clone, St: Clone, R: Clone> Clone for RateLimitLayer<K, St, R> {
    fn clone(&self) -> Self {
        Self {
            config: self.config.clone(),
        }
    }
}

impl RateLimitLayer {
    /// `quota` per API key (the [`AppKeyId`] key), in memory, reported as the limit `"default"`.
    /// A key whose [`AppIdentity`](crate::identity::AppIdentity) carries its own quota gets that one instead.
    pub fn new(quota: Quota) -> Self {
        Self::with_limit(Limit::default_named(quota))
    }

    /// One named limit per API key, in memory.
    pub fn with_limit(limit: Limit) -> Self {
        let policy = headers::configured_policy(std::slice::from_ref(&limit));
        Self {
            config: Config {
                key: AppKeyId,
                store: MemoryStore::new(),
                responder: DefaultResponder::new(),
                quotas: Quotas::of(std::slice::from_ref(&limit)),
                observe: Arc::new(RateObserve::new(std::slice::from_ref(&limit), None)),
                limits: Arc::from([limit]),
                clock: crate::clock::system(),
                on_missing: OnMissingKey::default(),
                fallback_ip: ClientIp::peer(),
                quota_from_identity: true,
                headers: HeaderMode::default(),
                policy,
                dry_run: false,
                on_store_error: OnStoreError::default(),
                store_timeout: Some(DEFAULT_STORE_TIMEOUT),
                cost: None,
            },
        }
    }

    /// Several named limits decided together, all or nothing (e.g. `10/s` and `1000/h`): a
    /// request refused by one limit consumes none of the others.
    ///
    /// # Errors
    ///
    /// [`ConfigError::TooManyLimits`] for none or more than [`MAX_LIMITS`], and
    /// [`ConfigError::DuplicateName`].
    pub fn with_limits(limits: impl IntoIterator<Item = Limit>) -> Result<Self, ConfigError> {
        let limits: Vec<Limit> = limits.into_iter().collect();
        let first = limits
            .first()
            .cloned()
            .ok_or(ConfigError::TooManyLimits { max: MAX_LIMITS })?;
        let mut layer = Self::with_limit(first);
        layer.config.limits = validate(limits, MAX_LIMITS)?;
        layer.config.refresh_derived();
        Ok(layer)
    }
}

fn validate(limits: Vec<Limit>, max: usize) -> Result<Arc<[Limit]>, ConfigError> {
    if limits.is_empty() || limits.len() > max.min(MAX_LIMITS) {
        return Err(ConfigError::TooManyLimits {
            max: max.min(MAX_LIMITS),
        });
    }
    for (i, limit) in limits.iter().enumerate() {
        if limits[..i].iter().any(|l| l.name() == limit.name()) {
            return Err(ConfigError::DuplicateName {
                name: limit.name().to_owned(),
            });
        }
    }
    Ok(limits.into())
}

impl<K, St, R> RateLimitLayer<K, St, R> {
    /// Counts requests under the key `key` derives (default [`AppKeyId`]).
    pub fn key<K2: KeyExtractor>(self, key: K2) -> RateLimitLayer<K2, St, R> {
        let c = self.config;
        RateLimitLayer {
            config: Config {
                key,
                store: c.store,
                responder: c.responder,
                limits: c.limits,
                clock: c.clock,
                on_missing: c.on_missing,
                fallback_ip: c.fallback_ip,
                quota_from_identity: c.quota_from_identity,
                headers: c.headers,
                policy: c.policy,
                quotas: c.quotas,
                dry_run: c.dry_run,
                on_store_error: c.on_store_error,
                store_timeout: c.store_timeout,
                cost: c.cost,
                observe: c.observe,
            },
        }
    }

    /// Keeps counters in `store` (default a fresh [`MemoryStore`]). Share one store between
    /// layers by passing clones of it.
    ///
    /// Layers sharing a store share its counters: a key's slot for its first limit is the same
    /// whichever layer charges it. That is what cloning one layer onto several routes means
    /// (one budget). Layers with different limits on the same kind of key need a store each,
    /// or, on Redis, a key prefix each.
    ///
    /// # Errors
    ///
    /// [`ConfigError::TooManyLimits`] if the store decides fewer limits than configured.
    pub fn with_store<St2: RateLimitStore>(
        self,
        store: St2,
    ) -> Result<RateLimitLayer<K, St2, R>, ConfigError> {
        let c = self.config;
        let limits = validate(c.limits.to_vec(), store.max_limits())?;
        Ok(RateLimitLayer {
            config: Config {
                key: c.key,
                store,
                responder: c.responder,
                limits,
                clock: c.clock,
                on_missing: c.on_missing,
                fallback_ip: c.fallback_ip,
                quota_from_identity: c.quota_from_identity,
                headers: c.headers,
                policy: c.policy,
                quotas: c.quotas,
                dry_run: c.dry_run,
                on_store_error: c.on_store_error,
                store_timeout: c.store_timeout,
                cost: c.cost,
                observe: c.observe,
            },
        })
    }

    /// Renders refusals with `responder` instead of the [`DefaultResponder`].
    #[deprecated(
        since = "0.2.0",
        note = "renamed `with_responder`, as on every tollgate layer"
    )]
    pub fn responder<R2>(self, responder: R2) -> RateLimitLayer<K, St, R2> {
        self.with_responder(responder)
    }

    /// Renders refusals with `responder` instead of the [`DefaultResponder`]. Whatever was set
    /// on the default one (flavour) goes with it: a custom responder picks the gRPC form
    /// itself.
    pub fn with_responder<R2>(self, responder: R2) -> RateLimitLayer<K, St, R2> {
        let c = self.config;
        RateLimitLayer {
            config: Config {
                key: c.key,
                store: c.store,
                responder,
                limits: c.limits,
                clock: c.clock,
                on_missing: c.on_missing,
                fallback_ip: c.fallback_ip,
                quota_from_identity: c.quota_from_identity,
                headers: c.headers,
                policy: c.policy,
                quotas: c.quotas,
                dry_run: c.dry_run,
                on_store_error: c.on_store_error,
                store_timeout: c.store_timeout,
                cost: c.cost,
                observe: c.observe,
            },
        }
    }

    /// Reports this limiter's refusals (429, and 401/503 when it cannot decide) to `sink`, one
    /// [`AuditEvent`](crate::observe::AuditEvent) each, with the application, key and user
    /// the earlier layers identified.
    pub fn audit(mut self, sink: impl crate::observe::AuditSink) -> Self {
        self.config.observe = Arc::new(RateObserve::new(
            &self.config.limits,
            Some(crate::observe::Audit(Arc::new(sink))),
        ));
        self
    }

    /// Reads time from `clock`; tests pass a [`ManualClock`](crate::clock::ManualClock).
    ///
    /// The default is the system's wall clock read through the CPU's time-stamp counter
    /// (`quanta`), re-synchronised with `SystemTime::now` once a second: on virtual machines
    /// `SystemTime::now` alone can cost more than the rest of a decision.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.config.clock = clock;
        self
    }

    /// What to do with a request the key extractor finds no key in (default
    /// [`OnMissingKey::Reject`]).
    pub fn on_missing_key(mut self, outcome: OnMissingKey) -> Self {
        self.config.on_missing = outcome;
        self
    }

    /// How [`OnMissingKey::FallbackToIp`] finds the client's address (default
    /// [`ClientIp::peer`]).
    pub fn fallback_ip(mut self, client_ip: ClientIp) -> Self {
        self.config.fallback_ip = client_ip;
        self
    }

    /// Whether an [`AppIdentity`](crate::identity::AppIdentity) quota (the key's plan tier) replaces the first limit's quota
    /// for that key (default `true`). The limit keeps its name.
    pub fn quota_from_identity(mut self, enabled: bool) -> Self {
        self.config.quota_from_identity = enabled;
        self
    }

    /// Whether every response, admitted or refused, carries the IETF `RateLimit-Policy` and
    /// `RateLimit` fields (default **on**; `false` leaves only `Retry-After` on a 429).
    pub fn ietf_headers(mut self, enabled: bool) -> Self {
        self.config.headers.ietf = enabled;
        self.config.refresh_derived();
        self
    }

    /// Adds `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` (seconds until
    /// the window ends, rounded up) for the binding limit to every response (default off).
    pub fn legacy_headers(mut self, enabled: bool) -> Self {
        self.config.headers.legacy = enabled;
        self
    }

    /// Shadow mode: count and report, but let every request through. A request that would have
    /// been refused carries a [`ShadowRejection`](super::ShadowRejection) in its response extensions and is logged.
    pub fn dry_run(mut self, enabled: bool) -> Self {
        self.config.dry_run = enabled;
        self
    }

    /// What to do when the store fails, times out or is full (default
    /// [`OnStoreError::FailClosed`]: 503).
    pub fn on_store_error(mut self, policy: OnStoreError) -> Self {
        self.config.on_store_error = policy;
        self
    }

    /// Bounds how long an asynchronous store may take (default 200 ms; `None` waits forever).
    /// Past it the hit counts as failed and [`on_store_error`](Self::on_store_error) applies.
    ///
    /// The timer is tokio's: it is armed only when the request is served inside a tokio
    /// runtime (with its time driver, as axum and tonic servers have). Outside one there is no
    /// timer to arm, and the store's future is awaited unbounded. Synchronous stores (the
    /// in-memory ones) never need it.
    pub fn store_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.store_timeout = timeout;
        self
    }

    /// Charges each request `cost(request)` units instead of 1. A cost of 0 is admitted without
    /// counting; a cost above a limit is always refused.
    pub fn cost<F>(mut self, cost: F) -> Self
    where
        F: Fn(&RequestHead<'_>) -> u32 + Send + Sync + 'static,
    {
        self.config.cost = Some(Arc::new(cost));
        self
    }

    /// The store, e.g. to read [`MemoryStore::tracked_keys`].
    pub fn store(&self) -> &St {
        &self.config.store
    }

    /// The configured limits.
    pub fn limits(&self) -> &[Limit] {
        &self.config.limits
    }
}

impl<K, St> RateLimitLayer<K, St, DefaultResponder> {
    /// Always answer refusals in the gRPC form (default: detect from `content-type`).
    pub fn for_grpc(mut self) -> Self {
        self.config.responder = self.config.responder.flavor(Flavor::Grpc);
        self
    }

    /// Always answer refusals in the HTTP form (default: detect from `content-type`).
    pub fn for_http(mut self) -> Self {
        self.config.responder = self.config.responder.flavor(Flavor::Http);
        self
    }
}

impl<S, K, St, R> Layer<S> for RateLimitLayer<K, St, R>
where
    K: Clone,
    St: Clone,
    R: Clone,
{
    type Service = KeyedRateLimit<S, K, St, R>;

    fn layer(&self, inner: S) -> Self::Service {
        KeyedRateLimit::from_config(inner, Arc::new(self.config.clone()))
    }
}

impl<K: fmt::Debug, St: fmt::Debug, R: fmt::Debug> fmt::Debug for RateLimitLayer<K, St, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.config.fmt(f)
    }
}
