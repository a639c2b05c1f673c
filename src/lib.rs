//! Tower layers that guard HTTP and gRPC servers with API keys, JWT bearer tokens, scopes
//! and per-key rate limits.
#![doc = include_str!("docs/crate.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[macro_use]
mod macros;

pub mod app_user;
pub mod auth;
pub mod body;
pub mod clock;
pub mod identity;
pub mod observe;
pub mod principal;
pub mod rejection;
pub mod scope;
pub mod usage;

mod error;
mod quota;

#[cfg(test)]
mod proptests;

#[cfg(any(feature = "api-key", feature = "jwt-base"))]
mod front_table;

#[cfg(feature = "axum")]
mod extract;

#[cfg(feature = "api-key")]
pub mod api_key;

#[cfg(feature = "jwt-base")]
pub mod jwt;

#[cfg(feature = "oidc")]
#[cfg_attr(docsrs, doc(cfg(feature = "oidc")))]
pub mod oidc;

#[cfg(feature = "issuer")]
pub mod issuer;

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;

#[cfg(feature = "rate-limit")]
pub mod rate_limit;

pub use crate::error::Error;
pub use crate::quota::Quota;
