//! Integration tests: real axum and tonic servers on 127.0.0.1, driven over the socket.
//!
//! One test binary, so the suite links once and runs in one process.

#[cfg(feature = "redis")]
mod cluster_admin;
mod servers;
mod support;

// `delegate_key_store!`, shared with the forged-key example.
#[cfg(feature = "api-key")]
#[path = "../../examples/common/delegate_store.rs"]
#[macro_use]
mod delegate_store;

mod auth;

#[cfg(feature = "api-key")]
mod api_key;
#[cfg(all(feature = "api-key", feature = "rate-limit"))]
mod audit;
#[cfg(feature = "api-key")]
mod forged_keys;
// Any backend: `--features jwt` (aws-lc-rs) or `--features rust-crypto`.
#[cfg(all(feature = "api-key", feature = "jwt"))]
mod combined;
// Shares the scope tests' keys.
#[cfg(all(feature = "api-key", feature = "jwt", feature = "rate-limit"))]
mod hyper_stack;
#[cfg(all(feature = "issuer", feature = "api-key", feature = "jwks-hyper"))]
mod issuer;
#[cfg(all(feature = "issuer", feature = "postgres"))]
mod issuer_postgres;
#[cfg(feature = "jwt-base")]
mod jwt;
#[cfg(all(feature = "postgres", feature = "redis", feature = "rate-limit"))]
mod key_lifecycle;
#[cfg(all(feature = "oidc", feature = "issuer", feature = "axum"))]
mod oidc;
#[cfg(all(feature = "oidc", feature = "issuer"))]
mod oidc_bad_input;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "api-key")]
mod readiness;
#[cfg(all(
    feature = "redis",
    feature = "rate-limit",
    feature = "jwt-base",
    feature = "postgres"
))]
mod redis_failover;
#[cfg(all(feature = "redis", feature = "jwt-base"))]
mod redis_hostile_values;
#[cfg(all(feature = "redis", feature = "postgres"))]
mod redis_invalidation;
#[cfg(all(feature = "redis", feature = "rate-limit", feature = "axum"))]
mod redis_leased;
#[cfg(all(feature = "redis", feature = "rate-limit"))]
mod redis_rate_limit;
#[cfg(all(feature = "redis", feature = "jwt-base"))]
mod redis_revocation;
#[cfg(all(feature = "api-key", feature = "jwt"))]
mod scopes;

#[cfg(all(feature = "postgres", feature = "rate-limit"))]
mod usage;

#[cfg(feature = "rate-limit")]
mod rate_limit;
#[cfg(feature = "rate-limit")]
mod rate_limit_floods;
#[cfg(feature = "rate-limit")]
mod window_exactness;

// The README's Rust snippets, compiled (every feature their code needs).
#[cfg(all(
    feature = "api-key",
    feature = "jwt",
    feature = "oidc",
    feature = "issuer",
    feature = "rate-limit",
    feature = "redis",
    feature = "axum",
    feature = "tonic"
))]
mod readme;

// Generated inputs through the public API (proptest).
mod properties;

// Starts the examples as child processes; they need these features to be built.
#[cfg(all(feature = "api-key", feature = "jwt", feature = "rate-limit"))]
mod examples;
