//! One rejection type for every layer, and how it becomes a response.
//!
//! Every tollgate layer turns a request away with a [`Rejection`]: a stable
//! [`RejectionKind`] plus what the response needs (the `WWW-Authenticate` challenge, the
//! required scopes, `Retry-After`, extra headers). A [`RejectionResponder`] renders it;
//! the [`DefaultResponder`] answers
//!
//! - HTTP requests with the kind's status, RFC 6750 / `ApiKey` challenges in
//!   `WWW-Authenticate`, and an RFC 9457 `application/problem+json` body:
//!   `{"type":"about:blank","title":"Unauthorized","status":401,"code":"expired_credential","detail":"…"}`;
//! - gRPC requests (HTTP/2 with `content-type: application/grpc…`, or gRPC-Web) with a
//!   trailers-only response: HTTP 200, `Cache-Control: no-store`, `grpc-status` (16, 3, 7, 8
//!   or 14) and `grpc-message`, which tonic clients read as a `Status`. An HTTP/1.1 request
//!   that only claims `application/grpc` gets the HTTP form.
//!
//! Whatever renders it, the middleware puts the [`RejectionKind`] and the [`Rejection`] into the
//! response's extensions, so outer layers (logging, metrics) can see why a request was refused.
//!
//! Nothing secret ever reaches a rejection: details are fixed sentences chosen by tollgate.

mod challenge;
mod kind;
pub(crate) mod render;
mod responder;

use std::borrow::Cow;
use std::time::Duration;

use http::HeaderMap;

pub use self::challenge::Challenge;
pub use self::kind::RejectionKind;
pub use self::responder::{DefaultResponder, Flavor, RejectionResponder, RequestHead};

/// Why a request was refused, and what the response must say. See the [module docs](self).
///
/// One pointer wide: results and outcomes that may hold a rejection stay small on the success
/// path, and the allocation happens only when a request is refused (which allocates a response
/// body anyway).
#[derive(Debug, Clone)]
pub struct Rejection(Box<Inner>);

#[derive(Debug, Clone)]
struct Inner {
    kind: RejectionKind,
    detail: Option<Cow<'static, str>>,
    challenge: Challenge,
    scope: Option<Cow<'static, str>>,
    retry_after: Option<Duration>,
    headers: Option<HeaderMap>,
    /// Whose credential was refused, when the layer knows (a revoked key's app and key id):
    /// for audit events, never sent.
    holder: Option<Box<Holder>>,
}

/// Whose credential a rejection refuses.
#[derive(Debug, Clone, Default)]
pub(crate) struct Holder {
    pub(crate) app_id: Option<String>,
    pub(crate) key_id: Option<String>,
    pub(crate) subject: Option<String>,
    pub(crate) issuer: Option<String>,
}

impl Rejection {
    /// A rejection of `kind` with the kind's default detail and no challenge.
    pub fn new(kind: RejectionKind) -> Self {
        Self(Box::new(Inner {
            kind,
            detail: None,
            challenge: Challenge::none(),
            scope: None,
            retry_after: None,
            headers: None,
            holder: None,
        }))
    }

    /// Records whose credential this refuses (for audit events; never sent).
    #[must_use]
    #[cfg_attr(not(feature = "api-key"), allow(dead_code))]
    pub(crate) fn with_holder(mut self, holder: Holder) -> Self {
        self.0.holder = Some(Box::new(holder));
        self
    }

    /// Whose credential this refuses, when known.
    pub(crate) fn holder(&self) -> Option<&Holder> {
        self.0.holder.as_deref()
    }

    /// Sets a human-readable detail. It is sent to the client: never put a credential in it.
    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<Cow<'static, str>>) -> Self {
        self.0.detail = Some(detail.into());
        self
    }

    /// Sets the challenge sent in `WWW-Authenticate`.
    #[must_use]
    pub fn with_challenge(mut self, challenge: Challenge) -> Self {
        self.0.challenge = challenge;
        self
    }

    /// Sets the space-delimited scopes that would satisfy the request (RFC 6750 `scope`).
    #[must_use]
    pub fn with_scope(mut self, scope: impl Into<Cow<'static, str>>) -> Self {
        self.0.scope = Some(scope.into());
        self
    }

    /// Sets how long the client should wait (`Retry-After`, rounded up to whole seconds, at least 1).
    #[must_use]
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.0.retry_after = Some(after);
        self
    }

    /// Adds a header to the response (e.g. `RateLimit`).
    #[must_use]
    pub fn with_header(mut self, name: http::HeaderName, value: http::HeaderValue) -> Self {
        self.0
            .headers
            .get_or_insert_with(HeaderMap::new)
            .append(name, value);
        self
    }

    /// The kind of rejection.
    pub fn kind(&self) -> RejectionKind {
        self.0.kind
    }

    /// The detail sentence (the kind's default when none was set).
    pub fn detail(&self) -> &str {
        self.0
            .detail
            .as_deref()
            .unwrap_or_else(|| self.0.kind.default_detail())
    }

    /// The challenge sent in `WWW-Authenticate`.
    pub fn challenge(&self) -> &Challenge {
        &self.0.challenge
    }

    /// The scopes that would satisfy the request, space-delimited.
    pub fn scope(&self) -> Option<&str> {
        self.0.scope.as_deref()
    }

    /// How long the client should wait before retrying.
    pub fn retry_after(&self) -> Option<Duration> {
        self.0.retry_after
    }

    /// Extra headers for the response.
    pub fn headers(&self) -> Option<&HeaderMap> {
        self.0.headers.as_ref()
    }
}

impl From<RejectionKind> for Rejection {
    fn from(kind: RejectionKind) -> Self {
        Self::new(kind)
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind().code(), self.detail())
    }
}

impl std::error::Error for Rejection {}

/// Renders `rejection` with `responder` for `request`, logs it (DEBUG, target
/// `tollgate::rejection`, never with a credential), and records the rejection and its kind in
/// the response extensions. Every middleware refuses requests through this one function.
pub(crate) fn reject<R, B>(
    responder: &R,
    rejection: Rejection,
    request: &http::Request<B>,
) -> http::Response<bytes::Bytes>
where
    R: RejectionResponder,
{
    log_debug!(
        kind = rejection.kind().code(),
        method = %request.method(),
        path = request.uri().path(),
        "request rejected"
    );
    let mut response = responder.respond(&rejection, &RequestHead::of(request));
    response.extensions_mut().insert(rejection.kind());
    response.extensions_mut().insert(rejection);
    response
}
