use std::any::TypeId;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Request};
use tower_layer::Layer;

use super::headers::{self, HeaderMode, Rendered};
use super::key::{AppId, AppKeyId, ClientIp, Key, KeyExtractor, OnMissingKey};
use super::service::KeyedRateLimit;
use super::store::{
    Decision, Hit, HitFuture, MAX_LIMITS, OnStoreError, RateLimitStore, StoreError,
};
use super::{ConfigError, Limit, MemoryStore, ShadowRejection};
use crate::Quota;
use crate::clock::SharedClock;
use crate::identity::AppIdentity;
use crate::rejection::RequestHead;
use crate::rejection::{Challenge, DefaultResponder, Flavor, Rejection, RejectionKind};

/// The default bound on an asynchronous store's answer.
const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_millis(200);

type CostFn = Arc<dyn Fn(&RequestHead<'_>) -> u32 + Send + Sync>;

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

pub(crate) struct Config<K, St, R> {
    pub(crate) key: K,
    pub(crate) store: St,
    pub(crate) responder: R,
    pub(crate) limits: Arc<[Limit]>,
    pub(crate) clock: SharedClock,
    pub(crate) on_missing: OnMissingKey,
    pub(crate) fallback_ip: ClientIp,
    pub(crate) quota_from_identity: bool,
    pub(crate) headers: HeaderMode,
    /// The `RateLimit-Policy` value of `limits` (when the IETF fields are on), kept current by
    /// the builder methods so that `Layer::layer` stays a plain clone.
    pub(crate) policy: Option<HeaderValue>,
    /// The quotas of `limits`, likewise kept current: a request without a plan quota of its
    /// own is decided against these in place, without building an array per request.
    pub(crate) quotas: Quotas,
    pub(crate) dry_run: bool,
    pub(crate) on_store_error: OnStoreError,
    pub(crate) store_timeout: Option<Duration>,
    pub(crate) cost: Option<CostFn>,
}

impl<K: Clone, St: Clone, R: Clone> Clone for Config<K, St, R> {
    fn clone(&self) -> Self {
        Self {
            key: self.key.clone(),
            store: self.store.clone(),
            responder: self.responder.clone(),
            limits: self.limits.clone(),
            clock: self.clock.clone(),
            on_missing: self.on_missing,
            fallback_ip: self.fallback_ip.clone(),
            quota_from_identity: self.quota_from_identity,
            headers: self.headers,
            policy: self.policy.clone(),
            quotas: self.quotas,
            dry_run: self.dry_run,
            on_store_error: self.on_store_error,
            store_timeout: self.store_timeout,
            cost: self.cost.clone(),
        }
    }
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
    /// A key whose [`AppIdentity`] carries its own quota gets that one instead.
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
    pub fn store<St2: RateLimitStore>(
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
            },
        })
    }

    /// Renders refusals with `responder` instead of the [`DefaultResponder`].
    pub fn responder<R2>(self, responder: R2) -> RateLimitLayer<K, St, R2> {
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
            },
        }
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

    /// Whether an [`AppIdentity`] quota (the key's plan tier) replaces the first limit's quota
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
    /// been refused carries a [`ShadowRejection`] in its response extensions and is logged.
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
    pub fn get_store(&self) -> &St {
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

impl<K: fmt::Debug, St: fmt::Debug, R: fmt::Debug> fmt::Debug for Config<K, St, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitLayer")
            .field("key", &self.key)
            .field("store", &self.store)
            .field("responder", &self.responder)
            .field("limits", &self.limits)
            .field("on_missing", &self.on_missing)
            .field("quota_from_identity", &self.quota_from_identity)
            .field("headers", &self.headers)
            .field("dry_run", &self.dry_run)
            .field("on_store_error", &self.on_store_error)
            .field("store_timeout", &self.store_timeout)
            .finish_non_exhaustive()
    }
}

/// The quotas one request is decided against (the configured ones, the first possibly replaced
/// by the key's own).
#[derive(Clone, Copy)]
pub(crate) struct Quotas {
    quotas: [Quota; MAX_LIMITS],
    len: usize,
}

impl Quotas {
    /// The quotas of `limits` (at most [`MAX_LIMITS`], as validated).
    fn of(limits: &[Limit]) -> Self {
        let mut quotas = [limits[0].quota(); MAX_LIMITS];
        for (slot, limit) in quotas.iter_mut().zip(limits) {
            *slot = limit.quota();
        }
        Self {
            quotas,
            len: limits.len().min(MAX_LIMITS),
        }
    }

    #[inline]
    pub(crate) fn as_slice(&self) -> &[Quota] {
        &self.quotas[..self.len]
    }
}

/// What `call` does with a request.
pub(crate) enum Step {
    /// Call the inner service, then add these to the response. Boxed: with no fields to add
    /// (headers off, or a pass without a decision) the admitted path moves one word around.
    Pass(Option<Box<Extras>>),
    /// Answer with this. (Boxed, like `Pending`'s quotas, to keep `Step` small: the
    /// admitted path moves it around and pays for its size, the others allocate anyway.)
    Refuse(Box<Rejection>),
    /// Await the store.
    Pending(HitFuture, Box<Quotas>),
}

/// Headers and a shadow marker for an admitted response.
pub(crate) struct Extras {
    pub(crate) headers: Rendered,
    pub(crate) shadow: Option<ShadowRejection>,
}

impl<K, St, R> Config<K, St, R> {
    fn refresh_derived(&mut self) {
        self.quotas = Quotas::of(&self.limits);
        self.policy = if self.headers.ietf {
            headers::configured_policy(&self.limits)
        } else {
            None
        };
    }

    /// A 401 carries a challenge (RFC 9110 §15.5.2): the credentials tollgate's keys come from,
    /// an API key in `x-api-key` or a bearer token.
    fn missing_key() -> Rejection {
        Rejection::new(RejectionKind::MissingCredential)
            .with_detail("The request carries nothing to rate-limit it by.")
            .with_challenge(
                Challenge::api_key(http::HeaderName::from_static("x-api-key"))
                    .and(Challenge::bearer()),
            )
    }

    /// The configured quotas, the first replaced by the key's `own` one.
    fn with_own(&self, own: Quota) -> Quotas {
        let mut quotas = self.quotas;
        quotas.quotas[0] = own;
        quotas
    }

    /// Turns the store's answer into what the service does.
    pub(crate) fn conclude(&self, result: Result<Decision, StoreError>, quotas: &Quotas) -> Step {
        let decision = match result {
            Ok(decision) => decision,
            Err(_error) => {
                log_warn!(error = %_error, "rate-limit store failed");
                return match self.on_store_error {
                    OnStoreError::FailOpen => Step::Pass(None),
                    OnStoreError::FailClosed => Step::Refuse(Box::new(
                        Rejection::new(RejectionKind::Unavailable)
                            .with_detail("The rate limiter cannot decide right now."),
                    )),
                };
            }
        };
        if decision.is_allowed() && !self.headers.any() {
            // The common admitted path without fields: nothing to render, nothing to box.
            return Step::Pass(None);
        }
        let headers = if self.headers.any() {
            headers::render(
                self.headers,
                &self.limits,
                self.policy.as_ref(),
                quotas.as_slice(),
                &decision,
            )
        } else {
            Rendered::default()
        };
        if decision.is_allowed() {
            return Step::Pass((!headers.is_empty()).then(|| {
                Box::new(Extras {
                    headers,
                    shadow: None,
                })
            }));
        }
        let retry_after = decision
            .retry_after()
            .unwrap_or(quotas.as_slice()[0].window());
        if self.dry_run {
            log_debug!(
                retry_after_ms = retry_after.as_millis() as u64,
                "rate limit exceeded (dry run: let through)"
            );
            return Step::Pass(Some(Box::new(Extras {
                headers,
                shadow: Some(ShadowRejection { retry_after }),
            })));
        }
        let mut rejection =
            Rejection::new(RejectionKind::RateLimited).with_retry_after(retry_after);
        for (name, value) in headers.into_pairs() {
            rejection = rejection.with_header(name, value);
        }
        Step::Refuse(Box::new(rejection))
    }
}

impl<K, St, R> Config<K, St, R>
where
    K: KeyExtractor,
    St: RateLimitStore,
{
    /// The request's key and, if enabled, its [`AppIdentity`]'s own quota.
    ///
    /// The default keys ([`AppKeyId`], [`AppId`]) come from the same `AppIdentity` as the
    /// quota, so for them it is read once: an extensions lookup (a hash-map probe and two
    /// dynamic calls) is a tenth of a whole decision. The comparison of type ids is resolved at
    /// compile time; the keys are exactly what those extractors return.
    fn key_and_own_quota<'r>(&self, view: &RequestHead<'r>) -> (Option<Key<'r>>, Option<Quota>) {
        let by_key_id = TypeId::of::<K>() == TypeId::of::<AppKeyId>();
        if by_key_id || TypeId::of::<K>() == TypeId::of::<AppId>() {
            let app = view.extensions().get::<AppIdentity>();
            let key = app.map(|app| {
                Key::from(if by_key_id {
                    app.key_id()
                } else {
                    app.app_id()
                })
            });
            let own = app
                .filter(|_| self.quota_from_identity)
                .and_then(AppIdentity::quota);
            return (key, own);
        }
        let own = if self.quota_from_identity {
            view.extensions()
                .get::<AppIdentity>()
                .and_then(AppIdentity::quota)
        } else {
            None
        };
        (self.key.extract(view), own)
    }

    /// Decides `request` synchronously when the store can.
    pub(crate) fn decide<B>(&self, request: &Request<B>) -> Step {
        let view = RequestHead::of(request);
        let (key, own_quota) = self.key_and_own_quota(&view);
        let key = match key {
            Some(key) => key,
            None => match self.on_missing {
                OnMissingKey::Pass => return Step::Pass(None),
                OnMissingKey::Reject => return Step::Refuse(Box::new(Self::missing_key())),
                OnMissingKey::FallbackToIp => match self.fallback_ip.resolve(&view) {
                    Some(ip) => Key::ip(self.fallback_ip.network(ip)),
                    None => return Step::Refuse(Box::new(Self::missing_key())),
                },
            },
        };
        let cost = self.cost.as_ref().map_or(1, |cost| cost(&view));
        if cost == 0 {
            return Step::Pass(None);
        }
        let own_quotas;
        let quotas = match own_quota {
            None => &self.quotas,
            Some(own) => {
                own_quotas = self.with_own(own);
                &own_quotas
            }
        };
        let hit = Hit::at_nanos(
            key.as_bytes(),
            quotas.as_slice(),
            cost,
            self.clock.unix_nanos(),
        )
        .statuses_needed(self.headers.any());
        match self.store.try_hit(&hit) {
            // The common case, decided without moving the decision around.
            Some(Ok(decision)) if decision.is_allowed() && !self.headers.any() => Step::Pass(None),
            Some(result) => self.conclude(result, quotas),
            None => Step::Pending(
                with_timeout(self.store.hit(&hit), self.store_timeout),
                Box::new(*quotas),
            ),
        }
    }
}

fn with_timeout(future: HitFuture, timeout: Option<Duration>) -> HitFuture {
    match timeout {
        // Only inside a runtime: outside one, tokio has no timer to arm (it would panic).
        Some(timeout) if tokio::runtime::Handle::try_current().is_ok() => Box::pin(async move {
            tokio::time::timeout(timeout, future)
                .await
                .unwrap_or_else(|_| Err(StoreError::timeout()))
        }),
        _ => future,
    }
}
