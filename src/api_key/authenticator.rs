use std::sync::Arc;

use futures_util::future::{BoxFuture, FutureExt};
use http::HeaderName;

use super::keys::{ApiKeys, Check};
use super::store::KeyStore;
use crate::auth::{Authenticator, Outcome, Repeated, single_value};
use crate::identity::AppIdentity;
use crate::rejection::{Challenge, Rejection, RejectionKind};

/// The header API keys are read from by default (seed 000, seed 001).
pub const DEFAULT_HEADER: HeaderName = HeaderName::from_static("x-api-key");

/// Reads an API key from a request and checks it against [`ApiKeys`].
///
/// Used through [`ApiKeyLayer`](super::ApiKeyLayer); public so it can be combined with other
/// authenticators.
pub struct ApiKeyAuthenticator<K> {
    keys: ApiKeys<K>,
    header: HeaderName,
    query_param: Option<Arc<str>>,
}

impl<K> Clone for ApiKeyAuthenticator<K> {
    fn clone(&self) -> Self {
        Self {
            keys: self.keys.clone(),
            header: self.header.clone(),
            query_param: self.query_param.clone(),
        }
    }
}

impl<K> std::fmt::Debug for ApiKeyAuthenticator<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyAuthenticator")
            .field("header", &self.header)
            .field("query_param", &self.query_param)
            .finish_non_exhaustive()
    }
}

impl<K> ApiKeyAuthenticator<K> {
    /// Reads keys from `X-API-Key` only.
    pub fn new(keys: ApiKeys<K>) -> Self {
        Self {
            keys,
            header: DEFAULT_HEADER,
            query_param: None,
        }
    }

    /// Reads keys from `header` instead of `X-API-Key`.
    #[must_use]
    pub fn header(mut self, header: HeaderName) -> Self {
        self.header = header;
        self
    }

    /// Also accepts the key in the query parameter `name`. Off by default: URLs end up in
    /// access logs, browser history and `Referer` headers, so only enable this for clients that
    /// cannot set headers.
    #[must_use]
    pub fn query_param(mut self, name: impl AsRef<str>) -> Self {
        self.query_param = Some(Arc::from(name.as_ref()));
        self
    }

    /// The keys this authenticator checks against.
    pub fn keys(&self) -> &ApiKeys<K> {
        &self.keys
    }

    /// Finds the one credential in the request: `Ok(None)` if there is none, an
    /// `invalid_request` rejection if there are several.
    fn credential<'r, B>(
        &self,
        request: &'r http::Request<B>,
    ) -> Result<Option<&'r [u8]>, Rejection> {
        let from_header = single_value(request.headers(), &self.header)
            .map_err(|Repeated| self.invalid_request("More than one API key was sent."))?
            .map(|v| v.as_bytes().trim_ascii());
        let from_query = match &self.query_param {
            Some(name) => query_value(request.uri().query(), name)
                .map_err(|_| self.invalid_request("More than one API key was sent."))?,
            None => None,
        };
        match (from_header, from_query) {
            (Some(_), Some(_)) => {
                Err(self.invalid_request("An API key was sent in more than one place."))
            }
            (found, None) | (None, found) => Ok(found),
        }
    }

    fn invalid_request(&self, detail: &'static str) -> Rejection {
        Rejection::new(RejectionKind::InvalidRequest)
            .with_detail(detail)
            .with_challenge(self.challenge_value())
    }

    fn challenge_value(&self) -> Challenge {
        Challenge::api_key(self.header.clone())
    }
}

/// The value of query parameter `name`, taken verbatim: keys are alphanumeric and `_`, so a
/// percent-encoded value is malformed anyway. Several occurrences are an `invalid_request`.
fn query_value<'q>(query: Option<&'q str>, name: &str) -> Result<Option<&'q [u8]>, ()> {
    let mut found = None;
    for pair in query.unwrap_or("").split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key == name {
            if found.is_some() {
                return Err(());
            }
            found = Some(value.as_bytes());
        }
    }
    Ok(found)
}

impl<K: KeyStore> Authenticator for ApiKeyAuthenticator<K> {
    type Identity = AppIdentity;
    type Future = BoxFuture<'static, Result<Option<AppIdentity>, Rejection>>;

    fn authenticate<B>(&self, request: &http::Request<B>) -> Outcome<AppIdentity, Self::Future> {
        let candidate = match self.credential(request) {
            Ok(Some(candidate)) => candidate,
            Ok(None) => return Outcome::NoCredential,
            Err(rejection) => return Outcome::Rejected(rejection),
        };
        match self.keys.check(candidate) {
            Check::Decided(Ok(identity)) => Outcome::Authenticated(identity),
            Check::Decided(Err(rejection)) => {
                Outcome::Rejected(rejection.with_challenge(self.challenge_value()))
            }
            Check::Lookup(parsed) => {
                let challenge = self.challenge_value();
                let lookup = self.keys.lookup(parsed);
                Outcome::Pending(
                    async move {
                        match lookup.await {
                            Ok(identity) => Ok(Some(identity)),
                            Err(rejection) if rejection.kind() == RejectionKind::Unavailable => {
                                Err(rejection)
                            }
                            Err(rejection) => Err(rejection.with_challenge(challenge)),
                        }
                    }
                    .boxed(),
                )
            }
        }
    }

    fn name(&self) -> &'static str {
        "api_key"
    }

    fn challenge(&self) -> Challenge {
        self.challenge_value()
    }
}
