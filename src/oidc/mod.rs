//! Identity providers by their issuer URL: OpenID Connect Discovery 1.0 (and RFC 8414) over
//! HTTPS (feature `oidc`).
//!
//! [`Discovery`] fetches `{issuer}/.well-known/openid-configuration` (or RFC 8414's
//! `/.well-known/oauth-authorization-server{path}`), requires the document's `issuer` to
//! equal the configured one exactly, takes its `jwks_uri` (same scheme as the issuer), and
//! narrows the accepted algorithms to those it advertises. The result is a
//! [`jwt::Provider`](crate::jwt::Provider) backed by a [`JwksSource`](crate::jwt::JwksSource),
//! so the keys stay fresh as the JWKS rules say: background refresh after `max-age`, one
//! re-fetch per cooldown for an unknown `kid`, the last good keys kept while the provider is
//! down or serves something wrong.
//!
//! Fetches go through [`HttpClient`]: rustls, Mozilla or native roots plus your own CA, a
//! timeout and a body cap on every request, plain HTTP only to loopback unless allowed.
//!
//! ```no_run
//! use tollgate::jwt::{ClaimMapping, JwtLayer, JwtKey, Provider};
//! use tollgate::oidc::{Discovery, HttpClient};
//!
//! # async fn run(own_key: JwtKey) -> Result<(), Box<dyn std::error::Error>> {
//! let client = HttpClient::builder()
//!     .add_root_pem(std::fs::read("/etc/ssl/private-ca.pem")?)?
//!     .build()?;
//! let auth0 = Discovery::new("https://tenant.eu.auth0.com/")
//!     .client(client)
//!     .discover()
//!     .await?
//!     .named("auth0")
//!     .audience("https://orders.example")
//!     .claim_mapping(ClaimMapping::auth0());
//! let internal = Provider::new("https://orders.example", own_key).named("internal");
//! let layer = JwtLayer::with_providers([auth0, internal]).build()?;
//! # let _ = layer;
//! # Ok(()) }
//! ```

mod client;
mod discovery;

pub use self::client::{ClientError, HttpClient, HttpClientBuilder, JwksUri};
pub use self::discovery::{Discovery, DiscoveryError, ProviderMetadata};
