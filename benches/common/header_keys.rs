//! The `x-api-key` header as the rate-limit key, for tollgate and for tower_governor: shared by
//! `benches/rate_limit.rs` and `examples/rate_limit_profile.rs` so both measure the same rows.

use http::{HeaderName, HeaderValue, Request};
use tollgate::rate_limit::{Key, KeyExtractor, RequestHead};

pub(crate) static API_KEY: HeaderName = HeaderName::from_static("x-api-key");

/// Keys by the `x-api-key` header, borrowed (no allocation).
#[derive(Clone, Copy)]
pub(crate) struct HeaderKey;

impl KeyExtractor for HeaderKey {
    fn extract<'r>(&self, request: &RequestHead<'r>) -> Option<Key<'r>> {
        request
            .headers()
            .get(&API_KEY)
            .map(|v| Key::bytes(v.as_bytes()))
    }
}

/// tower_governor's side: the header value is the key.
#[derive(Clone, Copy)]
pub(crate) struct GovernorHeaderKey;

impl tower_governor::key_extractor::KeyExtractor for GovernorHeaderKey {
    type Key = HeaderValue;

    fn extract<T>(&self, req: &Request<T>) -> Result<Self::Key, tower_governor::GovernorError> {
        req.headers()
            .get(&API_KEY)
            .cloned()
            .ok_or(tower_governor::GovernorError::UnableToExtractKey)
    }
}

/// `RateLimitLayer` keyed by [`HeaderKey`] as tower_governor is: no fields, and no plan quota
/// read from the request's `AppIdentity` (with distinct keys, reading it is a cache miss
/// tower_governor's row does not pay). The rows give it a store or keep the in-memory one.
pub(crate) fn header_layer(
    quota: tollgate::Quota,
) -> tollgate::rate_limit::RateLimitLayer<HeaderKey> {
    tollgate::rate_limit::RateLimitLayer::new(quota)
        .key(HeaderKey)
        .quota_from_identity(false)
        .ietf_headers(false)
}
