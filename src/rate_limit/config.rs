//! What a [`RateLimitLayer`](super::RateLimitLayer) was configured with, and the per-request
//! decision made from it: the state the layer, its service and its future share.

use std::any::TypeId;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Request};

use super::headers::{self, HeaderMode, Rendered};
use super::key::{AppId, AppKeyId, ClientIp, Key, KeyExtractor, OnMissingKey};
use super::store::{
    Decision, Hit, HitFuture, LimitStatus, MAX_LIMITS, OnStoreError, RateLimitStore, StoreError,
};
use super::{Limit, ShadowRejection};
use crate::Quota;
use crate::clock::SharedClock;
use crate::identity::AppIdentity;
use crate::observe::{Audit, Who, metrics};
use crate::rejection::RequestHead;
use crate::rejection::{Challenge, Rejection, RejectionKind};

/// A request's cost, computed from its head.
pub(crate) type CostFn = Arc<dyn Fn(&RequestHead<'_>) -> u32 + Send + Sync>;

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
    /// Per-limit decision counters and the audit sink, rebuilt with the limits.
    pub(crate) observe: Arc<RateObserve>,
}

/// What a rate limiter reports: a counter set per limit, and refusals to an audit sink.
#[derive(Debug)]
pub(crate) struct RateObserve {
    limits: Vec<metrics::Limits>,
    pub(crate) audit: Option<Audit>,
}

impl RateObserve {
    pub(crate) fn new(limits: &[Limit], audit: Option<Audit>) -> Self {
        Self {
            limits: limits
                .iter()
                .map(|l| metrics::Limits::new(l.name()))
                .collect(),
            audit,
        }
    }

    #[inline]
    fn allowed(&self) {
        if let Some(first) = self.limits.first() {
            first.allowed();
        }
    }

    fn limited(&self, decision: &Decision) {
        let index = decision
            .statuses()
            .iter()
            .position(LimitStatus::exceeded)
            .unwrap_or(0);
        if let Some(limit) = self.limits.get(index).or(self.limits.first()) {
            limit.limited();
        }
    }

    fn error(&self) {
        if let Some(first) = self.limits.first() {
            first.error();
        }
    }
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
            observe: self.observe.clone(),
        }
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
    pub(super) fn of(limits: &[Limit]) -> Self {
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
    /// Call the inner service, then add these to the response (inline: the default fields
    /// cost no allocation besides their values').
    Pass(Option<Extras>),
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
    pub(super) fn refresh_derived(&mut self) {
        self.quotas = Quotas::of(&self.limits);
        self.observe = Arc::new(RateObserve::new(&self.limits, self.observe.audit.clone()));
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

    /// The fields for `decision`, taken against `quotas`.
    #[inline]
    fn render(&self, decision: &Decision, quotas: &Quotas) -> Rendered {
        headers::render(
            self.headers,
            &self.limits,
            self.policy.as_ref(),
            quotas.as_slice(),
            decision,
        )
    }

    /// An admitted request's step when fields are on.
    fn admitted_with_fields(&self, decision: &Decision, quotas: &Quotas) -> Step {
        let headers = self.render(decision, quotas);
        Step::Pass((!headers.is_empty()).then_some(Extras {
            headers,
            shadow: None,
        }))
    }

    /// Turns the store's answer into what the service does.
    pub(crate) fn conclude(&self, result: Result<Decision, StoreError>, quotas: &Quotas) -> Step {
        let decision = match result {
            Ok(decision) => decision,
            Err(_error) => {
                self.observe.error();
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
        if decision.is_allowed() {
            self.observe.allowed();
        } else {
            self.observe.limited(&decision);
        }
        if decision.is_allowed() && !self.headers.any() {
            // The common admitted path without fields: nothing to render, nothing to box.
            return Step::Pass(None);
        }
        let headers = if self.headers.any() {
            self.render(&decision, quotas)
        } else {
            Rendered::default()
        };
        if decision.is_allowed() {
            return Step::Pass((!headers.is_empty()).then_some(Extras {
                headers,
                shadow: None,
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
            return Step::Pass(Some(Extras {
                headers,
                shadow: Some(ShadowRejection { retry_after }),
            }));
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
            // The common case, decided without moving the decision around: admitted, its
            // fields (if on) rendered from the decision where it lies.
            Some(Ok(ref decision)) if decision.is_allowed() => {
                self.observe.allowed();
                if !self.headers.any() {
                    return Step::Pass(None);
                }
                self.admitted_with_fields(decision, quotas)
            }
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

/// Reports a refusal: a 429 counts against the key's usage (when its `ApiKeys` tracks usage),
/// and the audit sink, if any, gets an event.
pub(crate) fn report_refusal<B>(
    observe: &RateObserve,
    rejection: &Rejection,
    request: &Request<B>,
) {
    let app = request.extensions().get::<AppIdentity>();
    if rejection.kind() == RejectionKind::RateLimited {
        if let Some(usage) = app.and_then(AppIdentity::usage) {
            usage.count_rate_limited();
        }
    }
    if let Some(audit) = &observe.audit {
        let user = request.extensions().get::<crate::identity::UserIdentity>();
        let who = Who {
            app_id: app.map(AppIdentity::app_id),
            key_id: app.map(AppIdentity::key_id),
            subject: user.and_then(|u| u.subject()),
            issuer: user.and_then(|u| u.issuer()),
        };
        audit.report("rate_limit", Some(rejection.kind().code()), who, request);
    }
}
