//! Key sets, selected by `kid` and `alg`, and where a layer's keys come from.
//!
//! A key is known by its `kid` and its algorithm together, so one JWKS entry may serve
//! several algorithms (an RSA key published without `alg`) and keys without a `kid` of
//! different algorithms live side by side. Two keys with the same `kid` (or both without)
//! for the same algorithm can never be told apart: adding the second is a configuration
//! error ([`ConfigError::DuplicateKey`]), never a silent replacement.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use super::ConfigError;
use super::jwks::JwksSource;
use super::keys::JwtKey;

mod parse;
#[cfg(test)]
mod tests;

pub(crate) use self::parse::{JwksOptions, parse as parse_jwks};

/// How many keys a token without `kid` is tried against, at most: the keys of its algorithm
/// in the set. A set holding more keys of that algorithm refuses kid-less tokens of it.
pub const MAX_KIDLESS_CANDIDATES: usize = 4;

/// The keys a layer accepts, looked up by `kid` and algorithm.
///
/// - A token with a `kid` is verified only with the key of that id pinned to the token's
///   `alg`.
/// - A token without a `kid` is verified with the set's key without a `kid` for its `alg`;
///   when there is none, it is tried against every key of its `alg`, at most
///   [`MAX_KIDLESS_CANDIDATES`] of them (a set with more refuses it). Never against a key
///   of another algorithm.
///
/// ```
/// use tollgate::jwt::{Algorithm, JwtKey, KeySet};
///
/// # fn main() -> Result<(), tollgate::jwt::ConfigError> {
/// // Three keys without `kid`: each verifies the tokens of its own algorithm.
/// let keys = KeySet::new()
///     .with(JwtKey::hmac([1; 32], Algorithm::HS256)?)
///     .with(JwtKey::hmac([2; 48], Algorithm::HS384)?)
///     .with(JwtKey::hmac([3; 64], Algorithm::HS512)?);
/// keys.check()?;
/// assert_eq!(keys.len(), 3);
///
/// // A second kid-less HS256 key could never be told apart from the first.
/// let clash = keys.with(JwtKey::hmac([4; 32], Algorithm::HS256)?);
/// assert!(clash.check().is_err());
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct KeySet {
    /// Keys with a `kid`; each slot holds one key per algorithm.
    by_kid: HashMap<Arc<str>, Vec<Arc<JwtKey>>>,
    /// Keys without a `kid`, one per algorithm.
    anonymous: Vec<Arc<JwtKey>>,
    /// Every key, in insertion order (kid-less candidates, listing).
    all: Vec<Arc<JwtKey>>,
    /// The first key that could not be added, reported by [`check`](Self::check) and by
    /// every layer built with the set.
    conflict: Option<ConfigError>,
}

/// The keys a token may be verified with: one, or up to [`MAX_KIDLESS_CANDIDATES`] for a
/// token without `kid`.
pub(crate) struct Candidates<'a>([Option<&'a Arc<JwtKey>>; MAX_KIDLESS_CANDIDATES]);

impl<'a> Candidates<'a> {
    fn one(key: &'a Arc<JwtKey>) -> Self {
        let mut out = [None; MAX_KIDLESS_CANDIDATES];
        out[0] = Some(key);
        Self(out)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &'a Arc<JwtKey>> + '_ {
        self.0.iter().map_while(|key| *key)
    }
}

/// Why a key set holds no key for a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Miss {
    /// No key of that `kid` (or, without `kid`, of that algorithm): a JWKS may re-fetch.
    Unknown,
    /// The `kid` is known, but not for the token's `alg`.
    Algorithm,
}

impl KeySet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `key`. A key that cannot be told apart from one already in the set (same `kid`,
    /// or both without one, and the same algorithm) is not added: the set remembers the
    /// conflict and [`check`](Self::check), and every layer built with the set, report it.
    #[must_use]
    pub fn with(mut self, key: JwtKey) -> Self {
        if let Err(error) = self.insert(key) {
            self.conflict.get_or_insert(error);
        }
        self
    }

    /// Adds `key`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::DuplicateKey`] if the set already holds a key with the same `kid` (or
    /// also without one) for the same algorithm; the set is unchanged.
    pub fn insert(&mut self, key: JwtKey) -> Result<(), ConfigError> {
        let key = Arc::new(key);
        let slot = match key.kid_arc() {
            Some(kid) => self.by_kid.entry(kid).or_default(),
            None => &mut self.anonymous,
        };
        if slot.iter().any(|k| k.algorithm() == key.algorithm()) {
            return Err(ConfigError::DuplicateKey {
                kid: key.kid().map(str::to_owned),
                algorithm: key.algorithm(),
            });
        }
        slot.push(Arc::clone(&key));
        self.all.push(key);
        Ok(())
    }

    /// Whether every key added with [`with`](Self::with) went in.
    ///
    /// # Errors
    ///
    /// The first [`ConfigError::DuplicateKey`] met.
    pub fn check(&self) -> Result<(), ConfigError> {
        match &self.conflict {
            Some(error) => Err(error.clone()),
            None => Ok(()),
        }
    }

    /// Parses a JWKS document (RFC 7517 §5) as providers publish it. Entries that cannot
    /// verify signatures are skipped, never failing the whole set: encryption keys
    /// (`use: enc`), unknown key types and algorithms, private or malformed keys, and
    /// symmetric (`kty: oct`) keys: a JWKS document is meant to be published, and a
    /// published secret signs for anyone (RFC 8725 §3.1); configure a shared secret with
    /// [`JwtKey::hmac`] or [`JwtKey::from_jwk_json`]. An RSA key without `alg` is taken for
    /// `RS256`; a later entry repeating a `kid` for the same algorithm is skipped (the first
    /// one wins). A [`JwksSource`] can choose the algorithms
    /// ([`JwksSourceBuilder::algorithms`](super::JwksSourceBuilder::algorithms)).
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidKey`] if the document is not a JSON object with a `keys` array.
    pub fn from_jwks_json(json: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        parse::parse(json.as_ref(), &JwksOptions::default())
    }

    /// How many keys the set holds.
    pub fn len(&self) -> usize {
        self.all.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    /// The keys, in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = &JwtKey> {
        self.all.iter().map(|key| &**key)
    }

    /// The keys a token with header `kid` and `alg` may be verified with.
    #[inline]
    pub(crate) fn select(&self, kid: Option<&str>, alg: &str) -> Result<Candidates<'_>, Miss> {
        let Some(kid) = kid else {
            return self.select_kidless(alg);
        };
        let slot = self.by_kid.get(kid).ok_or(Miss::Unknown)?;
        slot.iter()
            .find(|key| key.alg_name() == alg)
            .map(Candidates::one)
            .ok_or(Miss::Algorithm)
    }

    fn select_kidless(&self, alg: &str) -> Result<Candidates<'_>, Miss> {
        if let Some(key) = self.anonymous.iter().find(|key| key.alg_name() == alg) {
            return Ok(Candidates::one(key));
        }
        let mut out = [None; MAX_KIDLESS_CANDIDATES];
        let mut found = 0;
        for key in self.all.iter().filter(|key| key.alg_name() == alg) {
            if found == MAX_KIDLESS_CANDIDATES {
                return Err(Miss::Unknown);
            }
            out[found] = Some(key);
            found += 1;
        }
        if found == 0 {
            Err(Miss::Unknown)
        } else {
            Ok(Candidates(out))
        }
    }

    /// Whether `key` (this very `Arc`) is still in the set.
    #[inline]
    pub(crate) fn holds(&self, key: &Arc<JwtKey>) -> bool {
        let slot = match key.kid() {
            Some(kid) => match self.by_kid.get(kid) {
                Some(slot) => slot,
                None => return false,
            },
            None => &self.anonymous,
        };
        slot.iter().any(|k| Arc::ptr_eq(k, key))
    }

    /// Reuses the `Arc`s of `previous` for keys that did not change, so verified-token cache
    /// entries survive a JWKS refresh that only re-served the same keys.
    pub(crate) fn reuse_unchanged(self, previous: &Self) -> Self {
        let mut out = Self {
            conflict: self.conflict,
            ..Self::default()
        };
        for key in self.all {
            let old = previous
                .all
                .iter()
                .find(|old| old.same_as(&key))
                .map_or(key, Arc::clone);
            let slot = match old.kid_arc() {
                Some(kid) => out.by_kid.entry(kid).or_default(),
                None => &mut out.anonymous,
            };
            slot.push(Arc::clone(&old));
            out.all.push(old);
        }
        out
    }
}

impl From<JwtKey> for KeySet {
    fn from(key: JwtKey) -> Self {
        Self::new().with(key)
    }
}

impl FromIterator<JwtKey> for KeySet {
    /// Collects keys as [`with`](KeySet::with) adds them (conflicts are reported by
    /// [`check`](KeySet::check) and at build).
    fn from_iter<T: IntoIterator<Item = JwtKey>>(iter: T) -> Self {
        iter.into_iter().fold(Self::new(), Self::with)
    }
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.all).finish()
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

impl Source {
    /// The static set's conflict or emptiness, checked when a layer is built.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        match self {
            Self::Static(keys) if keys.is_empty() => Err(ConfigError::NoKeys),
            Self::Static(keys) => keys.check(),
            Self::Jwks(_) => Ok(()),
        }
    }
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
