use std::sync::Arc;

use tower_layer::Layer;

use super::{Authenticate, Mode};
use crate::observe::{Audit, AuditSink, Observer};
use crate::rejection::{DefaultResponder, Flavor};

/// Applies an [`Authenticator`](super::Authenticator) to every request. See the
/// [module docs](super).
///
/// Credential-specific layers such as `ApiKeyLayer` are this type with their authenticator
/// filled in, so everything here (modes, responders, realm, gRPC flavour) works for all of them.
#[derive(Debug, Clone)]
#[must_use]
pub struct AuthLayer<A, R = DefaultResponder> {
    pub(crate) authenticator: A,
    pub(crate) responder: R,
    pub(crate) mode: Mode,
    pub(crate) observer: Arc<Observer>,
}

impl<A> AuthLayer<A> {
    /// A layer that requires a credential and answers with the [`DefaultResponder`].
    pub fn with_authenticator(authenticator: A) -> Self {
        Self {
            authenticator,
            responder: DefaultResponder::new(),
            mode: Mode::Required,
            observer: Arc::new(Observer::new(None)),
        }
    }

    /// Sets the `realm` of the default responder's `WWW-Authenticate` challenges.
    pub fn realm(mut self, realm: impl AsRef<str>) -> Self {
        self.responder = self.responder.realm(realm);
        self
    }

    /// Always answer rejections in the gRPC form (default: detect from `content-type`).
    pub fn for_grpc(mut self) -> Self {
        self.responder = self.responder.flavor(Flavor::Grpc);
        self
    }

    /// Always answer rejections in the HTTP form (default: detect from `content-type`).
    pub fn for_http(mut self) -> Self {
        self.responder = self.responder.flavor(Flavor::Http);
        self
    }
}

impl<A, R> AuthLayer<A, R> {
    /// Lets requests without a credential through without an identity (a bad credential is
    /// still rejected).
    pub fn optional(mut self) -> Self {
        self.mode = Mode::Optional;
        self
    }

    /// Refuses requests without a credential (the default).
    pub fn required(mut self) -> Self {
        self.mode = Mode::Required;
        self
    }

    /// Sets the mode.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Renders rejections with `responder` instead of the [`DefaultResponder`]. Whatever was
    /// set on the default one ([`realm`](AuthLayer::realm), [`for_grpc`](AuthLayer::for_grpc))
    /// goes with it: a custom responder renders challenges and picks the gRPC form itself.
    pub fn with_responder<R2>(self, responder: R2) -> AuthLayer<A, R2> {
        AuthLayer {
            authenticator: self.authenticator,
            responder,
            mode: self.mode,
            observer: self.observer,
        }
    }

    /// Reports this layer's refusals (and, if the sink asks, its admitted requests) to
    /// `sink`: one [`AuditEvent`](crate::observe::AuditEvent) each, never with a credential.
    pub fn audit(mut self, sink: impl AuditSink) -> Self {
        self.observer = Arc::new(Observer::new(Some(Audit(Arc::new(sink)))));
        self
    }

    /// The authenticator.
    pub fn authenticator(&self) -> &A {
        &self.authenticator
    }
}

impl<S, A, R> Layer<S> for AuthLayer<A, R>
where
    A: Clone,
    R: Clone,
{
    type Service = Authenticate<S, A, R>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticate {
            inner,
            authenticator: self.authenticator.clone(),
            responder: self.responder.clone(),
            mode: self.mode,
            observer: Arc::clone(&self.observer),
        }
    }
}
