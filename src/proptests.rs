//! What every property test of the crate shares (`src/**/proptests.rs`).
//!
//! Each property runs proptest's default 256 cases, or `PROPTEST_CASES` when set:
//! `PROPTEST_CASES=100000 cargo test --release --all-features --lib proptests` runs many more.
//! A failure prints the shrunk input and is not written to a `proptest-regressions` file in
//! the tree: copy it into a regular test.

use proptest::prelude::ProptestConfig;
use proptest::strategy::{Just, Strategy};

/// proptest's defaults (with `PROPTEST_CASES` from the environment), no regression files.
pub(crate) fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Bytes a `HeaderValue` accepts (visible ASCII, space, tab, obs-text), any length up to `max`.
#[cfg_attr(not(feature = "jwt-base"), allow(dead_code))]
pub(crate) fn header_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        proptest::prop_oneof![Just(b'\t'), 0x20u8..=0x7e, 0x80u8..=0xff],
        0..=max,
    )
}
