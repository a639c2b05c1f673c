use http::HeaderName;

use super::authenticator::ApiKeyAuthenticator;
use super::keys::ApiKeys;
use crate::auth::{AuthLayer, Authenticate};
use crate::rejection::DefaultResponder;

/// Authenticates requests by API key. See the [module docs](super).
///
/// A name for [`AuthLayer`] with an [`ApiKeyAuthenticator`]: modes (`optional()`), the
/// responder (`with_responder`, `realm`, `for_grpc`) and everything else of `AuthLayer` apply.
pub type ApiKeyLayer<K, R = DefaultResponder> = AuthLayer<ApiKeyAuthenticator<K>, R>;

/// The service [`ApiKeyLayer`] makes.
pub type RequireApiKey<S, K, R = DefaultResponder> = Authenticate<S, ApiKeyAuthenticator<K>, R>;

impl<K> AuthLayer<ApiKeyAuthenticator<K>> {
    /// Requires a valid key from `keys` in the `X-API-Key` header.
    pub fn new(keys: ApiKeys<K>) -> Self {
        AuthLayer::with_authenticator(ApiKeyAuthenticator::new(keys))
    }
}

impl<K, R> AuthLayer<ApiKeyAuthenticator<K>, R> {
    /// Reads the key from `header` instead of `X-API-Key`.
    pub fn header(mut self, header: HeaderName) -> Self {
        self.authenticator = self.authenticator.header(header);
        self
    }

    /// Also accepts the key in query parameter `name` (off by default; see
    /// [`ApiKeyAuthenticator::query_param`]).
    pub fn query_param(mut self, name: impl AsRef<str>) -> Self {
        self.authenticator = self.authenticator.query_param(name);
        self
    }
}
