//! Keys made elsewhere: a literal prefix, an alphabet, a length, no checksum.

use std::fmt;

use super::{KeyDigest, Parsed};
use crate::api_key::ConfigError;

/// The shape of API keys made by another system, accepted next to the crate's own
/// ([`ApiKeysBuilder::accept_format`](crate::api_key::ApiKeysBuilder::accept_format)) so
/// existing keys keep working while new ones are generated in the crate's format.
///
/// A candidate matches when it starts with the prefix and the rest is `min..=max` characters
/// of the alphabet. There is no checksum, so every well-formed candidate costs a cache check
/// and, once per digest and negative TTL, a store lookup (bounded by
/// [`max_concurrent_lookups`](crate::api_key::ApiKeysBuilder::max_concurrent_lookups)). The
/// digest is the SHA-256 of the whole string, so keys differing anywhere differ in digest.
///
/// ```
/// use tollgate::api_key::ForeignKeyFormat;
///
/// let acme = ForeignKeyFormat::new("acme_live_", ForeignKeyFormat::BASE62, 32..=32)?;
/// assert!(acme.matches(b"acme_live_0123456789abcdefghijABCDEFGHIJkl"));
/// assert!(!acme.matches(b"acme_test_0123456789abcdefghijABCDEFGHIJkl"));
/// # Ok::<_, tollgate::api_key::ConfigError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ForeignKeyFormat {
    prefix: Box<str>,
    /// Which bytes may follow the prefix.
    allowed: [bool; 256],
    min: usize,
    max: usize,
}

impl ForeignKeyFormat {
    /// `0-9`, `A-Z`, `a-z`.
    pub const BASE62: &'static str =
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    /// Lower-case hexadecimal.
    pub const HEX: &'static str = "0123456789abcdef";
    /// The URL-safe base64 alphabet (RFC 4648 §5), without padding.
    pub const BASE64URL: &'static str =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    /// Keys `prefix` + `length` characters of `alphabet` (printable ASCII).
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidForeignFormat`] for a prefix or alphabet that is empty or not
    /// printable ASCII, or a length range that is empty or starts below 16 characters (too
    /// short to be a secret).
    pub fn new(
        prefix: impl Into<String>,
        alphabet: &str,
        length: std::ops::RangeInclusive<usize>,
    ) -> Result<Self, ConfigError> {
        let prefix: String = prefix.into();
        let printable = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic());
        if !printable(&prefix) || !printable(alphabet) || length.is_empty() || *length.start() < 16
        {
            return Err(ConfigError::InvalidForeignFormat { prefix });
        }
        let mut allowed = [false; 256];
        for b in alphabet.bytes() {
            allowed[usize::from(b)] = true;
        }
        Ok(Self {
            prefix: prefix.into(),
            allowed,
            min: *length.start(),
            max: *length.end(),
        })
    }

    /// The literal prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether `candidate` has this shape.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        let Some(body) = candidate.strip_prefix(self.prefix.as_bytes()) else {
            return false;
        };
        (self.min..=self.max).contains(&body.len())
            && body.iter().all(|b| self.allowed[usize::from(*b)])
    }

    pub(crate) fn parse(&self, candidate: &[u8]) -> Option<Parsed> {
        self.matches(candidate).then(|| Parsed {
            digest: KeyDigest::of(candidate),
            checksum: 0,
            foreign: true,
        })
    }
}

impl fmt::Debug for ForeignKeyFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ForeignKeyFormat")
            .field("prefix", &self.prefix)
            .field("length", &(self.min..=self.max))
            .finish_non_exhaustive()
    }
}
