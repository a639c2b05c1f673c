//! Key sets, selected by `kid`, and where a layer's keys come from.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};

use super::ConfigError;
use super::jwks::JwksSource;
use super::keys::{JwtKey, invalid};

/// The keys a layer accepts, looked up by `kid`.
///
/// A token with a `kid` is verified only with the key of that id. A token without a `kid`
/// is verified with the set's key that has no id, or with the only key when the set holds
/// exactly one.
#[derive(Clone, Default)]
pub struct KeySet {
    by_kid: HashMap<Arc<str>, Arc<JwtKey>>,
    anonymous: Option<Arc<JwtKey>>,
    len: usize,
}

impl KeySet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `key`. A later key with the same `kid` (or a second key without one) replaces
    /// the earlier.
    #[must_use]
    pub fn with(mut self, key: JwtKey) -> Self {
        self.insert(key);
        self
    }

    /// Adds `key`, replacing one with the same `kid`.
    pub fn insert(&mut self, key: JwtKey) {
        let key = Arc::new(key);
        match key.kid_arc() {
            Some(kid) => {
                self.by_kid.insert(kid, key);
            }
            None => self.anonymous = Some(key),
        }
        self.len = self.by_kid.len() + usize::from(self.anonymous.is_some());
    }

    /// Parses a JWKS document (RFC 7517 §5). Keys that are unusable for signature
    /// verification (encryption keys, private keys, unknown types, RSA keys without `alg`)
    /// are skipped, as RFC 7517 §5 asks. Symmetric (`kty: oct`) keys are skipped too: a JWKS
    /// document is meant to be published, and a published secret signs for anyone
    /// (RFC 8725 §3.1). Configure a shared secret with [`JwtKey::hmac`] or
    /// [`JwtKey::from_jwk_json`].
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidKey`] if the document is not a JWKS.
    pub fn from_jwks_json(json: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        Self::parse_jwks(json.as_ref(), false)
    }

    /// As [`from_jwks_json`](Self::from_jwks_json), keeping `oct` keys if `symmetric`.
    pub(crate) fn parse_jwks(json: &[u8], symmetric: bool) -> Result<Self, ConfigError> {
        let set: JwkSet = serde_json::from_slice(json).map_err(|_| invalid("JWKS"))?;
        Ok(Self::from_jwks(&set, symmetric))
    }

    /// Builds a set from a parsed JWKS, skipping unusable keys, and `oct` keys unless
    /// `symmetric`.
    pub(crate) fn from_jwks(set: &JwkSet, symmetric: bool) -> Self {
        let mut out = Self::new();
        for jwk in &set.keys {
            if !symmetric && matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
                continue;
            }
            if let Ok(key) = JwtKey::from_jwk(jwk) {
                out.insert(key);
            }
        }
        out
    }

    /// How many keys the set holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The key a token with header `kid` must be verified with.
    #[inline]
    pub(crate) fn select(&self, kid: Option<&str>) -> Option<&Arc<JwtKey>> {
        match kid {
            Some(kid) => self.by_kid.get(kid),
            None => self.anonymous.as_ref().or_else(|| {
                if self.len == 1 {
                    self.by_kid.values().next()
                } else {
                    None
                }
            }),
        }
    }

    /// Reuses the `Arc`s of `previous` for keys that did not change, so verified-token cache
    /// entries survive a JWKS refresh that only re-served the same keys.
    pub(crate) fn reuse_unchanged(mut self, previous: &Self) -> Self {
        for (kid, key) in &mut self.by_kid {
            if let Some(old) = previous.by_kid.get(kid) {
                if old.same_as(key) {
                    *key = Arc::clone(old);
                }
            }
        }
        if let (Some(new), Some(old)) = (&mut self.anonymous, &previous.anonymous) {
            if old.same_as(new) {
                *new = Arc::clone(old);
            }
        }
        self
    }
}

impl From<JwtKey> for KeySet {
    fn from(key: JwtKey) -> Self {
        Self::new().with(key)
    }
}

impl FromIterator<JwtKey> for KeySet {
    fn from_iter<T: IntoIterator<Item = JwtKey>>(iter: T) -> Self {
        let mut out = Self::new();
        for key in iter {
            out.insert(key);
        }
        out
    }
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.anonymous.iter().chain(self.by_kid.values()))
            .finish()
    }
}

/// Where a layer's keys come from: a static [`KeySet`] (or one [`JwtKey`]) or a
/// [`JwksSource`]. Made with `From`.
#[derive(Clone, Debug)]
pub struct KeySource(pub(crate) Source);

#[derive(Clone, Debug)]
pub(crate) enum Source {
    Static(Arc<KeySet>),
    Jwks(JwksSource),
}

impl From<KeySet> for KeySource {
    fn from(keys: KeySet) -> Self {
        Self(Source::Static(Arc::new(keys)))
    }
}

impl From<JwtKey> for KeySource {
    fn from(key: JwtKey) -> Self {
        KeySet::from(key).into()
    }
}

impl From<JwksSource> for KeySource {
    fn from(source: JwksSource) -> Self {
        Self(Source::Jwks(source))
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::Algorithm;

    use super::*;

    #[test]
    fn selection_by_kid() {
        let a = JwtKey::hmac([1; 32], Algorithm::HS256)
            .unwrap()
            .with_kid("a");
        let b = JwtKey::hmac([2; 32], Algorithm::HS256)
            .unwrap()
            .with_kid("b");
        let one = KeySet::from(a.clone());
        assert!(
            one.select(None).is_some(),
            "a single key serves tokens without kid"
        );
        assert!(one.select(Some("a")).is_some());
        assert!(one.select(Some("b")).is_none());
        let two = KeySet::new().with(a).with(b);
        assert!(two.select(None).is_none(), "no guessing among several keys");
        assert_eq!(two.select(Some("b")).unwrap().kid(), Some("b"));
        let anonymous = two.with(JwtKey::hmac([3; 32], Algorithm::HS256).unwrap());
        assert_eq!(anonymous.select(None).unwrap().kid(), None);
        assert_eq!(anonymous.len(), 3);
    }
}
