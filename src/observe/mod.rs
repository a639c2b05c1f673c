//! What the layers tell you about their decisions: metrics through the `metrics` facade
//! (feature `metrics`) and audit events to an [`AuditSink`] you register.
//!
//! # Metrics (feature `metrics`)
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `tollgate_auth_decisions_total` | counter | `layer` (`api_key`, `jwt`, `app_user`, …), `outcome` (`allowed`, `passed` for an optional layer without credential, `refused`), `code` (the rejection code, empty unless refused) |
//! | `tollgate_rate_limit_decisions_total` | counter | `limit` (its name), `outcome` (`allowed`, `limited`, `error`) |
//! | `tollgate_api_key_cache_total` | counter | `result` (`hit`, `miss`) |
//! | `tollgate_api_key_lookup_seconds` | histogram | — (store lookups on cache misses) |
//! | `tollgate_jwks_fetches_total` | counter | `outcome` (`ok`, `error`) |
//! | `tollgate_refresh_rotations_total` | counter | `outcome` (`rotated`, `reuse_detected`) |
//!
//! No label carries a key, a user or anything a client chooses, so the number of series is
//! bounded whatever clients send. The hot-path counters are registered with the recorder on
//! first use and kept: install your recorder (e.g. `metrics-exporter-prometheus`) before the
//! first request. Without a recorder a counter costs a branch.
//!
//! # Audit events
//!
//! An [`AuditSink`] registered on a layer
//! ([`AuthLayer::audit`](crate::auth::AuthLayer::audit),
//! `RateLimitLayer::audit`) receives one [`AuditEvent`] per refusal (and per admitted request
//! with [`AuditSink::wants_allowed`]): the layer, the outcome and rejection code, the
//! application, key id, subject and issuer when known, the client address when the server
//! recorded it, the method and the path. Never a credential, a digest or a token. It is
//! called synchronously on the request path: keep it cheap, and ship events elsewhere from
//! your own task.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

pub(crate) mod metrics;

/// One decision of a layer, as an [`AuditSink`] receives it. Borrowed from the request: copy
/// what you keep.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct AuditEvent<'a> {
    /// The layer: `api_key`, `jwt`, `app_user`, `rate_limit`, or a custom authenticator's.
    pub layer: &'static str,
    /// Whether the request went on.
    pub allowed: bool,
    /// The rejection code (`revoked_credential`, `rate_limited`, …) of a refusal.
    pub code: Option<&'static str>,
    /// The application, when known (an API key's).
    pub app_id: Option<&'a str>,
    /// The API key's id (its public id, never the key), when known.
    pub key_id: Option<&'a str>,
    /// The user (`sub`), when known.
    pub subject: Option<&'a str>,
    /// The token's issuer, when known.
    pub issuer: Option<&'a str>,
    /// The client's address, when the server put a `SocketAddr` in the request extensions.
    /// (axum puts a `ConnectInfo<SocketAddr>` there: read it from
    /// [`extensions`](Self::extensions).)
    pub client: Option<IpAddr>,
    /// The request's extensions, for what else the server recorded there.
    pub extensions: &'a http::Extensions,
    /// The request method.
    pub method: &'a http::Method,
    /// The request path (no query: it may carry credentials).
    pub path: &'a str,
}

/// Receives [`AuditEvent`]s. Implemented for `Fn(&AuditEvent<'_>)` closures.
pub trait AuditSink: Send + Sync + 'static {
    /// Records one event. Runs on the request path.
    fn record(&self, event: &AuditEvent<'_>);

    /// Whether admitted requests are reported too (default: refusals only).
    fn wants_allowed(&self) -> bool {
        false
    }
}

impl<F> AuditSink for F
where
    F: Fn(&AuditEvent<'_>) + Send + Sync + 'static,
{
    fn record(&self, event: &AuditEvent<'_>) {
        self(event);
    }
}

/// A registered sink, shared by a layer's services.
#[derive(Clone)]
pub(crate) struct Audit(pub(crate) Arc<dyn AuditSink>);

impl fmt::Debug for Audit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Audit(<sink>)")
    }
}

/// Who a decision concerns, as far as a layer knows.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Who<'a> {
    pub(crate) app_id: Option<&'a str>,
    pub(crate) key_id: Option<&'a str>,
    pub(crate) subject: Option<&'a str>,
    pub(crate) issuer: Option<&'a str>,
}

impl Audit {
    /// Reports a decision on `request`, if the sink wants it.
    pub(crate) fn report<B>(
        &self,
        layer: &'static str,
        code: Option<&'static str>,
        who: Who<'_>,
        request: &http::Request<B>,
    ) {
        if code.is_none() && !self.0.wants_allowed() {
            return;
        }
        self.0.record(&AuditEvent {
            layer,
            allowed: code.is_none(),
            code,
            app_id: who.app_id,
            key_id: who.key_id,
            subject: who.subject,
            issuer: who.issuer,
            client: request.extensions().get::<SocketAddr>().map(SocketAddr::ip),
            extensions: request.extensions(),
            method: request.method(),
            path: request.uri().path(),
        });
    }
}

/// What one layer reports about its decisions: counters, and audit events if a sink is set.
#[derive(Debug)]
pub(crate) struct Observer {
    pub(crate) decisions: metrics::Decisions,
    pub(crate) audit: Option<Audit>,
}

impl Observer {
    pub(crate) fn new(audit: Option<Audit>) -> Self {
        Self {
            decisions: metrics::Decisions::new(),
            audit,
        }
    }

    /// An admitted request; `who` is only built when a sink wants admitted requests.
    #[inline]
    pub(crate) fn allowed<'w, B>(
        &self,
        layer: &'static str,
        who: impl FnOnce() -> Who<'w>,
        request: &http::Request<B>,
    ) {
        self.decisions.allowed(layer);
        if let Some(audit) = &self.audit {
            if audit.0.wants_allowed() {
                audit.report(layer, None, who(), request);
            }
        }
    }

    /// An optional layer let a request without credential through.
    #[inline]
    pub(crate) fn passed(&self, layer: &'static str) {
        self.decisions.passed(layer);
    }

    /// A refusal of `kind`.
    pub(crate) fn refused<B>(
        &self,
        layer: &'static str,
        kind: crate::rejection::RejectionKind,
        who: Who<'_>,
        request: &http::Request<B>,
    ) {
        self.decisions.refused(layer, kind);
        if let Some(audit) = &self.audit {
            audit.report(layer, Some(kind.code()), who, request);
        }
    }
}
