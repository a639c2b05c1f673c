//! The floor of sending the IETF RateLimit fields at all: two values already rendered (as the
//! layer renders them for a quota of 1,000,000,000 per second), inserted into a response.

use http::{HeaderName, HeaderValue, Response};

/// Adds `RateLimit-Policy` and `RateLimit` to `response` (allocating its header map when the
/// service sent none).
pub(crate) fn with_static_fields<B>(mut response: Response<B>) -> Response<B> {
    let headers = response.headers_mut();
    // Names and values made at compile time: what is left is the two inserts.
    headers.insert(
        const { HeaderName::from_static("ratelimit-policy") },
        const { HeaderValue::from_static("\"default\";q=1000000000;w=1") },
    );
    headers.insert(
        const { HeaderName::from_static("ratelimit") },
        const { HeaderValue::from_static("\"default\";r=999999999;t=1") },
    );
    response
}
