//! The shared authentication machinery every credential layer is built on.
//!
//! An [`Authenticator`] looks at a request head and answers with an [`Outcome`]: an identity,
//! no credential of its kind, a rejection, or a future for the slow path (a key-store lookup,
//! a JWKS fetch). One generic service, [`Authenticate`], does the tower work once: it runs the
//! authenticator, inserts the identity into the request extensions, calls the inner service or
//! answers with the rejection. `ApiKeyLayer` and the JWT layer are thin names over it.
//!
//! # Modes
//!
//! [`Mode::Required`] answers 401 when no credential is sent; [`Mode::Optional`] lets such
//! requests through without an identity. In both modes a credential that *is* sent and is bad
//! is rejected: optional authentication never downgrades a bad key to anonymous.
//!
//! # Fast and slow paths
//!
//! When the authenticator decides synchronously (a cached key, an HMAC token), the service
//! calls the inner service from `call` and returns its future wrapped in [`ResponseFuture`]:
//! no box, no clone of the inner service. Only when it must await does the service take the
//! ready inner service and leave a clone in its place (the clone-and-swap idiom, see
//! [tower's guide](https://docs.rs/tower-service/latest/tower_service/trait.Service.html#be-careful-when-cloning-inner-services)),
//! so the service that `poll_ready` prepared is the one that gets called.
//!
//! # Writing an authenticator
//!
//! The crate's verdicts are reusable, so a custom authenticator need not rewrite them:
//! `ApiKeys::verify` checks a key exactly as `ApiKeyLayer` does (format, checksum, cache,
//! store, the same rejections), `JwtAuthenticator::validate` a token as `JwtLayer` does, and
//! `ApiKeyAuthenticator` and `JwtAuthenticator` are [`Authenticator`]s to wrap or combine (as
//! `AppUserLayer` combines them). The cache and the claim checks stay private: what they
//! decide is reachable through those two calls, and their internals may change.
//!
//! `AuthLayer::with_authenticator` is the generic constructor; each credential layer's own
//! `new` (`ApiKeyLayer::new(keys)`, `JwtLayer::new(keys)`, `AppUserLayer::new(…)`) takes what
//! that credential needs and builds its authenticator.
//!
//! ```
//! use std::convert::Infallible;
//! use std::future::Ready;
//! use tollgate::auth::{AuthLayer, Authenticator, Identity, Outcome};
//! use tollgate::rejection::{Challenge, Rejection, RejectionKind};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! /// A shared secret in `X-Token`, for illustration only.
//! #[derive(Clone)]
//! struct SharedSecret;
//!
//! #[derive(Clone)]
//! struct Machine;
//!
//! impl Identity for Machine {
//!     fn insert_into(self, extensions: &mut http::Extensions) {
//!         extensions.insert(self);
//!     }
//! }
//!
//! impl Authenticator for SharedSecret {
//!     type Identity = Machine;
//!     type Future = Ready<Result<Option<Machine>, Rejection>>;
//!
//!     fn authenticate<B>(&self, request: &http::Request<B>) -> Outcome<Machine, Self::Future> {
//!         match request.headers().get("x-token") {
//!             None => Outcome::NoCredential,
//!             Some(v) if v == "let-me-in" => Outcome::Authenticated(Machine),
//!             Some(_) => Outcome::Rejected(Rejection::new(RejectionKind::InvalidCredential)),
//!         }
//!     }
//!
//!     fn challenge(&self) -> Challenge {
//!         Challenge::none()
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Infallible> {
//! let service = ServiceBuilder::new()
//!     .layer(AuthLayer::with_authenticator(SharedSecret))
//!     .service(service_fn(|request: http::Request<String>| async move {
//!         assert!(request.extensions().get::<Machine>().is_some());
//!         Ok::<_, Infallible>(http::Response::new(String::from("hello")))
//!     }));
//!
//! let request = http::Request::builder().header("x-token", "nope").body(String::new()).unwrap();
//! let response = service.clone().oneshot(request).await?;
//! assert_eq!(response.status(), 401);
//!
//! let request = http::Request::builder().header("x-token", "let-me-in").body(String::new()).unwrap();
//! let response = service.oneshot(request).await?;
//! assert_eq!(response.status(), 200);
//! # Ok(())
//! # }
//! ```

mod future;
// Read by the credential layers only.
#[cfg(any(feature = "api-key", feature = "jwt-base"))]
mod header;
mod layer;
mod service;

use std::future::Future;

use crate::rejection::{Challenge, Rejection};

pub use self::future::ResponseFuture;
#[cfg(any(feature = "api-key", feature = "jwt-base"))]
pub(crate) use self::header::{Repeated, single_value};
pub use self::layer::AuthLayer;
pub use self::service::Authenticate;

/// Decides who is calling, from the request head. See the [module docs](self).
pub trait Authenticator {
    /// What a successful authentication hands downstream.
    type Identity: Identity;

    /// The slow path, for authenticators that must await (a store lookup, a key fetch).
    /// It must own what it needs: it outlives the borrow of the request.
    type Future: Future<Output = Result<Option<Self::Identity>, Rejection>>;

    /// Looks at `request` and decides, or returns a future that will.
    fn authenticate<B>(&self, request: &http::Request<B>) -> Outcome<Self::Identity, Self::Future>;

    /// The challenge a "no credential" rejection carries (`WWW-Authenticate`).
    fn challenge(&self) -> Challenge;

    /// The layer's name in metrics and audit events (`api_key`, `jwt`, `app_user`; default
    /// `auth`). A fixed, short, lower-case name.
    fn name(&self) -> &'static str {
        "auth"
    }
}

/// What an [`Authenticator`] made of a request.
#[derive(Debug)]
pub enum Outcome<I, F> {
    /// A valid credential; the identity goes into the request extensions.
    Authenticated(I),
    /// No credential of this kind in the request.
    NoCredential,
    /// A credential that is present but not acceptable.
    Rejected(Rejection),
    /// The decision needs to await; the future resolves to one of the three above
    /// (`Ok(Some)`, `Ok(None)`, `Err`).
    Pending(F),
}

/// A value that an authenticator puts into the request extensions for the layers and
/// handlers downstream.
pub trait Identity {
    /// Inserts `self` (and whatever views of it downstream code reads) into `extensions`.
    fn insert_into(self, extensions: &mut http::Extensions);

    /// The application this identity authenticates, if it is one (an API key's app id):
    /// what [`AppUserLayer`](crate::app_user::AppUserLayer) binds delegated tokens to.
    fn app_id(&self) -> Option<&str> {
        None
    }

    /// The application a user credential was delegated to (a token's `act.sub`, RFC 8693),
    /// if it was.
    fn actor(&self) -> Option<&str> {
        None
    }

    /// The API key's public id, if this identity comes from one (for audit events).
    fn key_id(&self) -> Option<&str> {
        None
    }

    /// The user (`sub`), if this identity names one (for audit events).
    fn subject(&self) -> Option<&str> {
        None
    }

    /// The issuer of the user's token, if any (for audit events).
    fn issuer(&self) -> Option<&str> {
        None
    }
}

/// Who an identity is, for an audit event.
pub(crate) fn who<I: Identity>(identity: &I) -> crate::observe::Who<'_> {
    crate::observe::Who {
        app_id: identity.app_id(),
        key_id: identity.key_id(),
        subject: identity.subject(),
        issuer: identity.issuer(),
    }
}

/// Who a rejection refused, when the layer said.
pub(crate) fn refused_who(rejection: &Rejection) -> crate::observe::Who<'_> {
    rejection
        .holder()
        .map(|h| crate::observe::Who {
            app_id: h.app_id.as_deref(),
            key_id: h.key_id.as_deref(),
            subject: h.subject.as_deref(),
            issuer: h.issuer.as_deref(),
        })
        .unwrap_or_default()
}

/// Whether a request without a credential is refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    /// No credential → 401 `missing_credential`.
    #[default]
    Required,
    /// No credential → the request goes on without an identity. A bad credential is still
    /// rejected.
    Optional,
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use bytes::Bytes;
    use http::{Request, Response};
    use http_body_util::BodyExt;
    use tower::{ServiceBuilder, ServiceExt, service_fn};

    use super::*;
    use crate::rejection::{Flavor, RejectionKind, RequestHead};

    /// Accepts `x-user: alice`, rejects any other value, sees no credential without the header.
    #[derive(Clone)]
    struct Header;

    #[derive(Clone)]
    struct User;

    impl Identity for User {
        fn insert_into(self, extensions: &mut http::Extensions) {
            extensions.insert(self);
        }
    }

    impl Authenticator for Header {
        type Identity = User;
        type Future = std::future::Ready<Result<Option<User>, Rejection>>;

        fn authenticate<B>(&self, request: &Request<B>) -> Outcome<User, Self::Future> {
            match request.headers().get("x-user") {
                None => Outcome::NoCredential,
                Some(v) if v == "alice" => Outcome::Authenticated(User),
                Some(_) => Outcome::Rejected(Rejection::new(RejectionKind::InvalidCredential)),
            }
        }

        fn challenge(&self) -> Challenge {
            Challenge::bearer()
        }
    }

    fn request(user: Option<&str>, content_type: &str) -> Request<String> {
        let mut builder = Request::builder().header("content-type", content_type);
        if content_type.starts_with("application/grpc") {
            builder = builder.version(http::Version::HTTP_2); // as gRPC always is
        }
        if let Some(user) = user {
            builder = builder.header("x-user", user);
        }
        builder.body(String::new()).unwrap()
    }

    async fn echo(request: Request<String>) -> Result<Response<String>, Infallible> {
        let who = if request.extensions().get::<User>().is_some() {
            "alice"
        } else {
            "anonymous"
        };
        Ok(Response::new(who.to_owned()))
    }

    #[tokio::test]
    async fn custom_responder_is_used_for_rejections_only_and_the_kind_is_recorded() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&calls);
        let responder = move |rejection: &Rejection, head: &RequestHead<'_>| {
            counted.fetch_add(1, Ordering::SeqCst);
            let mut response = Response::new(Bytes::from(format!(
                "{} at {}",
                rejection.kind().code(),
                head.uri().path()
            )));
            *response.status_mut() = rejection.kind().status();
            response
        };
        let service = ServiceBuilder::new()
            .layer(AuthLayer::with_authenticator(Header).with_responder(responder))
            .service_fn(echo);

        let ok = service
            .clone()
            .oneshot(request(Some("alice"), "text/plain"))
            .await
            .unwrap();
        assert_eq!(ok.into_body().collect().await.unwrap().to_bytes(), "alice");
        assert_eq!(calls.load(Ordering::SeqCst), 0, "never called on success");

        let refused = service
            .oneshot(request(Some("bob"), "text/plain"))
            .await
            .unwrap();
        assert_eq!(refused.status(), 401);
        assert_eq!(
            refused.extensions().get::<RejectionKind>(),
            Some(&RejectionKind::InvalidCredential)
        );
        assert_eq!(
            refused.extensions().get::<Rejection>().map(Rejection::kind),
            Some(RejectionKind::InvalidCredential)
        );
        let body = refused.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "invalid_credential at /");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn flavour_follows_content_type_unless_forced() {
        let cases = [
            (Flavor::Auto, "application/grpc", true),
            (Flavor::Auto, "application/grpc+proto", true),
            (Flavor::Auto, "application/json", false),
            (Flavor::Http, "application/grpc", false),
            (Flavor::Grpc, "application/json", true),
        ];
        for (flavor, content_type, grpc) in cases {
            let layer = AuthLayer::with_authenticator(Header);
            let layer = match flavor {
                Flavor::Http => layer.for_http(),
                Flavor::Grpc => layer.for_grpc(),
                _ => layer,
            };
            let service = ServiceBuilder::new().layer(layer).service(service_fn(echo));
            let response = service.oneshot(request(None, content_type)).await.unwrap();
            let name = format!("{flavor:?} {content_type}");
            if grpc {
                assert_eq!(response.status(), 200, "{name}");
                assert_eq!(response.headers()["grpc-status"], "16", "{name}");
                assert_eq!(
                    response.headers()["content-type"],
                    "application/grpc",
                    "{name}"
                );
                assert!(
                    response.headers().get("www-authenticate").is_none(),
                    "{name}"
                );
            } else {
                assert_eq!(response.status(), 401, "{name}");
                assert!(response.headers().get("grpc-status").is_none(), "{name}");
                assert_eq!(response.headers()["www-authenticate"], "Bearer", "{name}");
            }
        }
    }

    #[tokio::test]
    async fn optional_mode_passes_anonymous_requests_but_not_bad_credentials() {
        let service = ServiceBuilder::new()
            .layer(AuthLayer::with_authenticator(Header).optional())
            .service_fn(echo);
        let anonymous = service
            .clone()
            .oneshot(request(None, "text/plain"))
            .await
            .unwrap();
        assert_eq!(
            anonymous.into_body().collect().await.unwrap().to_bytes(),
            "anonymous"
        );
        let bad = service
            .oneshot(request(Some("bob"), "text/plain"))
            .await
            .unwrap();
        assert_eq!(bad.status(), 401);
    }

    #[test]
    fn services_and_futures_are_send_and_sync() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>() {}
        send_sync::<AuthLayer<Header>>();
        send_sync::<
            Authenticate<
                tower::util::BoxCloneSyncService<Request<String>, Response<String>, Infallible>,
                Header,
            >,
        >();
        send::<
            ResponseFuture<
                tower::util::BoxCloneSyncService<Request<String>, Response<String>, Infallible>,
                Header,
                crate::rejection::DefaultResponder,
                String,
            >,
        >();
        send_sync::<Rejection>();
    }
}
