//! Issuing tokens: access tokens the [`jwt`](crate::jwt) layer accepts, rotating refresh
//! tokens with reuse detection, token exchange for API-key applications, and the JWKS
//! document of the issuer's public keys. No web framework: wire these to your own routes.
//!
//! # Contents
//!
//! | item | what it is |
//! |---|---|
//! | [`TokenIssuer`], [`SigningKey`], [`Grant`], [`AccessToken`] | mints RFC 9068 access tokens (HMAC, RSA, EC, Ed25519), rotates its key |
//! | [`Jwks`] | the public keys for `/.well-known/jwks.json`, retired keys included while their tokens live |
//! | [`TokenService`], [`RefreshTokenStore`], [`InMemoryRefreshStore`] | login, refresh with rotation and reuse detection, logout |
//! | `PostgresRefreshStore` (feature `postgres`) | refresh tokens in PostgreSQL, rotation enforced by the database |
//! | [`TokenExchange`], [`ExchangePolicy`] | an app authenticated by API key gets a short-lived token for one user (RFC 8693) |
//! | [`TokenResponse`], [`OAuthError`] | the token endpoint's answers (RFC 6749 §5.1, §5.2) |
//!
//! # One configuration for minting and validating
//!
//! [`TokenIssuer::jwt_layer`] returns a [`JwtLayer`](crate::jwt::JwtLayer) builder with the
//! issuer's verification keys, `iss`, `aud`, clock and `typ: at+jwt` check, so the layer
//! accepts exactly what the issuer mints. Verifiers in other processes fetch [`Jwks`] with a
//! [`JwksSource`](crate::jwt::JwksSource).
//!
//! Signing uses the crypto backend the features choose (`aws-lc-rs` or `rust-crypto`, as for
//! the JWT layer); with `jwt-base` alone, install a `jsonwebtoken` provider before making keys.
//!
//! # Refresh tokens
//!
//! - **Format**: `rt_` + 43 base64url characters (256 bits from the OS CSPRNG). Only the
//!   SHA-256 digest is stored, with the subject, family, scopes, expiry and state.
//! - **Every use rotates**: the token used dies, a successor and a new access token are
//!   returned. A family is the chain from one login.
//! - **Reuse revokes the family** (RFC 9700 §4.14.2): presenting a rotated token again means
//!   two parties hold the chain, so every token of the family is revoked, and, with a
//!   [denylist](TokenServiceBuilder::denylist) wired, the access tokens minted from it too.
//! - **Grace window** (optional, off by default): for a few seconds after a rotation, the
//!   token just used is accepted once more and returns *the same* successor (never a third
//!   token) and the same access token `jti`. The successor is derived from the presented
//!   token and a stored seed ([`RefreshToken`] docs), so it can be handed out again without
//!   storing any plaintext. Only the immediate predecessor of the active token qualifies.
//! - **Races**: two refreshes with the same token derive the same successor, and the store's
//!   atomic [`rotate`](RefreshTokenStore::rotate) lets it in once: with a grace window both
//!   get it, without one the second is a reuse.
//! - **A session's grant** is fixed at login: its subject, scopes and custom claims
//!   ([`TokenService::issue_grant`]) are minted into every access token it refreshes. A refresh
//!   may ask for fewer scopes ([`TokenService::refresh_with_scopes`], RFC 6749 §6); the
//!   successor still holds them all.
//! - **Bad input** (malformed, unknown, expired, revoked tokens) is `invalid_grant`.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use tollgate::issuer::{InMemoryRefreshStore, SigningKey, TokenIssuer, TokenService};
//! use tollgate::jwt::Algorithm;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let key = SigningKey::hmac("2026-11", b"an example secret of at least 32 bytes!", Algorithm::HS256)?;
//! let issuer = TokenIssuer::builder("https://auth.example", key)
//!     .audience("https://api.example")
//!     .build()?;
//! // The layer guarding the API accepts what the issuer mints.
//! let layer = issuer.jwt_layer().build()?;
//!
//! let service = TokenService::builder(issuer, Arc::new(InMemoryRefreshStore::new())).build();
//! let login = service.issue("alice", ["orders:read"]).await?;
//! assert_eq!(login.expires_in, 900);
//!
//! let first = login.refresh_token.unwrap();
//! let refreshed = service.refresh(&first).await?;
//! assert_ne!(refreshed.refresh_token.as_deref(), Some(first.as_str()));
//!
//! // Using the first token again is a reuse: the whole session is revoked.
//! assert_eq!(service.refresh(&first).await.unwrap_err().code().as_str(), "invalid_grant");
//! let second = refreshed.refresh_token.unwrap();
//! assert!(service.refresh(&second).await.is_err());
//! # let _ = layer;
//! # Ok(())
//! # }
//! ```

mod directory;
mod exchange;
mod grant;
mod jwks;
#[cfg(feature = "postgres")]
mod postgres;
mod refresh;
mod response;
mod service;
mod signing;
mod token_issuer;

pub use self::directory::{DirectoryError, DirectoryUser, TrustTheApp, UserDirectory};
pub use self::exchange::{AnyUser, ExchangePolicy, TokenExchange};
pub use self::grant::{AccessToken, Grant, IssueError};
pub use self::jwks::Jwks;
#[cfg(feature = "postgres")]
pub use self::postgres::PostgresRefreshStore;
pub use self::refresh::{
    BoxRefreshStore, DynRefreshStore, FamilyId, InMemoryRefreshStore, RefreshRecord, RefreshState,
    RefreshToken, RefreshTokenStore, RotateOutcome, StoreError, TokenDigest,
};
pub use self::response::{ErrorCode, OAuthError, TokenResponse};
pub use self::service::{TokenService, TokenServiceBuilder};
pub use self::signing::SigningKey;
pub use self::token_issuer::{TokenIssuer, TokenIssuerBuilder};

#[cfg(test)]
mod tests;
