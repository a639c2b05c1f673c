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
mod layer;
mod service;

use std::future::Future;

use crate::rejection::{Challenge, Rejection};

pub use self::future::ResponseFuture;
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
