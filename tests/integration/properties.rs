//! Generated inputs through the public API: never a panic, and a round trip or an oracle
//! where one exists. The crate-private parsers have theirs next to them (`src/**/proptests.rs`).
//!
//! Each property runs proptest's default 256 cases, or `PROPTEST_CASES` when set (the README's
//! testing section). A failure prints the shrunk input; no regression file is written.

use proptest::prelude::ProptestConfig;

#[cfg(feature = "api-key")]
mod api_key;
#[cfg(feature = "issuer")]
mod issuer;
#[cfg(feature = "jwt")]
mod jwks;
#[cfg(feature = "jwt")]
mod jwt;
#[cfg(feature = "rate-limit")]
mod rate_limit;

/// proptest's defaults (with `PROPTEST_CASES` from the environment), no regression files.
#[cfg_attr(
    not(any(feature = "api-key", feature = "jwt", feature = "rate-limit")),
    allow(dead_code)
)]
fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// As [`config`], with a `1/divisor` of the cases (at least 16), for properties whose case
/// costs a signature.
#[cfg(any(feature = "issuer", feature = "jwt"))]
fn config_scaled(divisor: u32) -> ProptestConfig {
    let config = config();
    ProptestConfig {
        cases: (config.cases / divisor).max(16),
        ..config
    }
}
