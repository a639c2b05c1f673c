//! The key format (described for users on [`KeyFormat`]'s module, `api_key`): `<prefix>_<43 base62 characters of randomness><6 base62 characters of checksum>`.
//!
//! - 32 bytes (256 bits) from the operating system's CSPRNG, written as a 43-digit base62
//!   number (62^43 > 2^256), so keys are alphanumeric and copy with a double-click.
//! - A checksum: the first 32 bits of the SHA-256 of everything before it, as 6 base62 digits,
//!   so a mistyped or truncated key is refused without touching a cache or a store. Anyone can
//!   compute that checksum, so it stops typos, not forgers: a made-up key with a correct
//!   checksum costs one store lookup (bounded in number by
//!   [`ApiKeysBuilder::max_concurrent_lookups`](super::ApiKeysBuilder::max_concurrent_lookups)).
//!   With a server-side secret ([`KeyFormat::with_checksum_secret`]) the checksum is the first
//!   32 bits of an HMAC-SHA-256 under it instead, and a forged key is refused offline: no cache
//!   entry, no store lookup. The prefix still lets secret scanners find the keys.
//! - A prefix so secret scanners can find leaked keys and humans can tell keys apart.
//!
//! At rest only the [`KeyDigest`] is kept: the SHA-256 of the whole key string, as
//! `printf %s "$KEY" | sha256sum` prints it. Two distinct keys, of this format or any other,
//! never share a digest. A cached key is found with that one hash: the checksum is checked
//! (a second hash) only before a key is first looked up. (A CRC-32, as GitHub's tokens use,
//! costs more than the SHA-256 here: byte-at-a-time CRC is latency-bound, SHA-256 has CPU
//! instructions.) A fast hash is right for storage: the key carries 256 bits of entropy, so
//! there is nothing for a slow hash to protect.
//!
//! Keys made elsewhere (`acme_live_` and 32 characters, say) are accepted next to these with a
//! [`ForeignKeyFormat`]: a literal prefix, an alphabet and a length, no checksum; their digest
//! is the same SHA-256 of the whole string.

use std::fmt;
use std::sync::Arc;

use sha2::{Digest as _, Sha256};

use super::ConfigError;

mod foreign;
mod key;

pub use self::foreign::ForeignKeyFormat;
pub(crate) use self::key::legacy_digest;
pub use self::key::{ApiKey, KeyDigest};

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const RANDOM_LEN: usize = 43;
const CHECKSUM_LEN: usize = 6;
const BODY_LEN: usize = RANDOM_LEN + CHECKSUM_LEN;
const MAX_PREFIX_LEN: usize = 16;

/// How keys of one deployment look: their prefix. See the [`api_key` module docs](super)
/// for the format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFormat {
    prefix: String,
    keyed: Option<Arc<KeyedChecksums>>,
}

/// The secrets a keyed checksum is made and checked with.
struct KeyedChecksums {
    /// Signs new keys; checks keys.
    current: Hmac,
    /// Still accepted (keys made before a change of secret).
    previous: Vec<Hmac>,
    /// Whether keys with the public, unkeyed checksum are still accepted (while moving an
    /// existing deployment to a secret).
    accept_unkeyed: bool,
}

impl PartialEq for KeyedChecksums {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Eq for KeyedChecksums {}

impl fmt::Debug for KeyedChecksums {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedChecksums")
            .field("previous_secrets", &self.previous.len())
            .field("accept_unkeyed", &self.accept_unkeyed)
            .finish_non_exhaustive()
    }
}

/// HMAC-SHA-256 (RFC 2104) under one secret, its two padded key blocks absorbed once, so a
/// checksum costs two SHA-256 compressions more than the digest.
#[derive(Clone)]
struct Hmac {
    inner: Sha256,
    outer: Sha256,
}

impl Hmac {
    fn new(secret: &[u8]) -> Self {
        let mut block = [0u8; 64];
        if secret.len() > block.len() {
            block[..32].copy_from_slice(&Sha256::digest(secret));
        } else {
            block[..secret.len()].copy_from_slice(secret);
        }
        let pad = |with: u8| block.map(|b| b ^ with);
        Self {
            inner: Sha256::new_with_prefix(pad(0x36)),
            outer: Sha256::new_with_prefix(pad(0x5c)),
        }
    }

    fn mac(&self, message: &[u8]) -> [u8; 32] {
        let inner = self.inner.clone().chain_update(message).finalize();
        self.outer.clone().chain_update(inner).finalize().into()
    }

    fn checksum(&self, message: &[u8]) -> u32 {
        let mac = self.mac(message);
        u32::from_be_bytes([mac[0], mac[1], mac[2], mac[3]])
    }
}

/// The shortest checksum secret accepted: 256 bits.
const MIN_SECRET_LEN: usize = 32;

impl KeyFormat {
    /// Keys that start with `<prefix>_`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidPrefix`] unless the prefix is 1 to 16 characters of `a-z`, `0-9`
    /// and `_`, starting with a letter.
    pub fn new(prefix: impl Into<String>) -> Result<Self, ConfigError> {
        let prefix = prefix.into();
        let valid = (1..=MAX_PREFIX_LEN).contains(&prefix.len())
            && prefix.as_bytes()[0].is_ascii_lowercase()
            && prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if valid {
            Ok(Self {
                prefix,
                keyed: None,
            })
        } else {
            Err(ConfigError::InvalidPrefix { prefix })
        }
    }

    /// The prefix, without the separating `_`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Makes a new key from 256 bits of OS randomness.
    ///
    /// # Panics
    ///
    /// If the operating system's random number generator fails, which `getrandom` reports only
    /// on platforms without one.
    pub fn generate(&self) -> ApiKey {
        let mut random = [0u8; 32];
        getrandom::fill(&mut random).expect("the OS random number generator failed");
        let mut key = String::with_capacity(self.prefix.len() + 1 + BODY_LEN);
        key.push_str(&self.prefix);
        key.push('_');
        key.push_str(&base62_fixed(&random, RANDOM_LEN));
        let checksum = match &self.keyed {
            Some(keyed) => keyed.current.checksum(key.as_bytes()),
            None => public_checksum(key.as_bytes()),
        };
        key.push_str(&base62_fixed(&checksum.to_be_bytes(), CHECKSUM_LEN));
        ApiKey(key)
    }

    /// The same format with a **keyed checksum**: new keys carry the first 32 bits of
    /// HMAC-SHA-256 under `secret`, and only such keys are accepted, so a key made up by
    /// someone without the secret is refused offline (no cache entry, no store lookup). Keep
    /// the secret with your other server secrets: whoever holds it can make well-formed keys
    /// (still not valid ones: a key must also be in the store).
    ///
    /// Keys made before the secret carry the public checksum: accept them while they are
    /// rotated out with [`accept_unkeyed_checksums`](Self::accept_unkeyed_checksums).
    ///
    /// # Errors
    ///
    /// [`ConfigError::WeakChecksumSecret`] for a secret shorter than 32 bytes.
    pub fn with_checksum_secret(mut self, secret: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        let current = Self::hmac(secret.as_ref())?;
        let (previous, accept_unkeyed) = match self.keyed.take() {
            // A new secret: keys made under the one before it keep working.
            Some(old) => {
                let mut previous = vec![old.current.clone()];
                previous.extend(old.previous.iter().cloned());
                (previous, old.accept_unkeyed)
            }
            None => (Vec::new(), false),
        };
        self.keyed = Some(Arc::new(KeyedChecksums {
            current,
            previous,
            accept_unkeyed,
        }));
        Ok(self)
    }

    /// With a checksum secret: also accepts keys made under `secret` (an earlier one being
    /// retired). Keys are made only under the current secret.
    ///
    /// # Errors
    ///
    /// [`ConfigError::WeakChecksumSecret`] for a secret shorter than 32 bytes, or
    /// [`ConfigError::NoChecksumSecret`] when no current secret is set.
    pub fn with_previous_checksum_secret(
        mut self,
        secret: impl AsRef<[u8]>,
    ) -> Result<Self, ConfigError> {
        let previous = Self::hmac(secret.as_ref())?;
        let keyed = self.keyed.as_deref().ok_or(ConfigError::NoChecksumSecret)?;
        let mut keyed = KeyedChecksums {
            current: keyed.current.clone(),
            previous: keyed.previous.clone(),
            accept_unkeyed: keyed.accept_unkeyed,
        };
        keyed.previous.push(previous);
        self.keyed = Some(Arc::new(keyed));
        Ok(self)
    }

    /// With a checksum secret: whether keys carrying the public (unkeyed) checksum are still
    /// accepted, while a deployment moves to the secret (default: no). Forged keys then reach
    /// the store again, as without a secret.
    ///
    /// # Errors
    ///
    /// [`ConfigError::NoChecksumSecret`] when no secret is set.
    pub fn accept_unkeyed_checksums(mut self, accept: bool) -> Result<Self, ConfigError> {
        let keyed = self.keyed.as_deref().ok_or(ConfigError::NoChecksumSecret)?;
        self.keyed = Some(Arc::new(KeyedChecksums {
            current: keyed.current.clone(),
            previous: keyed.previous.clone(),
            accept_unkeyed: accept,
        }));
        Ok(self)
    }

    /// The same format for one environment: keys prefixed `<prefix>_<environment>_`
    /// (`tg_live_…`, `tg_test_…`), so a key says where it belongs and a layer built with this
    /// format refuses the keys of every other environment as malformed.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidPrefix`] if the combined prefix is not a valid one.
    pub fn with_environment(self, environment: impl AsRef<str>) -> Result<Self, ConfigError> {
        let prefix = format!("{}_{}", self.prefix, environment.as_ref());
        self.renamed(prefix)
    }

    /// The same checksum settings under another prefix.
    pub(crate) fn renamed(&self, prefix: impl Into<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            keyed: self.keyed.clone(),
            ..Self::new(prefix)?
        })
    }

    /// Whether this format checks a keyed checksum.
    pub fn is_keyed(&self) -> bool {
        self.keyed.is_some()
    }

    fn hmac(secret: &[u8]) -> Result<Hmac, ConfigError> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(ConfigError::WeakChecksumSecret {
                length: secret.len(),
            });
        }
        Ok(Hmac::new(secret))
    }

    /// Checks that `candidate` is a well-formed key of this format with a correct checksum, and
    /// returns its digest. Works on raw header bytes; allocates nothing; hashes twice (the
    /// digest and the checksum; the checksum is an HMAC with a checksum secret).
    pub fn check(&self, candidate: &[u8]) -> Option<KeyDigest> {
        let parsed = self.parse(candidate)?;
        self.checksum_holds(candidate, &parsed)
            .then_some(parsed.digest)
    }

    /// The shape check and the digest, without the checksum check: what a cache lookup needs.
    /// A key already cached as known skips the keyed checksum when its checksum digits are the
    /// ones checked when it was cached ([`Parsed::checksum`]).
    pub(crate) fn parse(&self, candidate: &[u8]) -> Option<Parsed> {
        let prefix = self.prefix.as_bytes();
        if candidate.len() != prefix.len() + 1 + BODY_LEN
            || !candidate.starts_with(prefix)
            || candidate[prefix.len()] != b'_'
            || !candidate[prefix.len() + 1..]
                .iter()
                .all(u8::is_ascii_alphanumeric)
        {
            return None;
        }
        let checksum = &candidate[candidate.len() - CHECKSUM_LEN..];
        Some(Parsed {
            checksum: base62_decode_u32(checksum)?,
            digest: KeyDigest::of(candidate),
            foreign: false,
        })
    }

    /// Whether `parsed` (from [`parse`](Self::parse) of `candidate`) carries a checksum this
    /// format accepts.
    pub(crate) fn checksum_holds(&self, candidate: &[u8], parsed: &Parsed) -> bool {
        if parsed.foreign {
            return true;
        }
        let signed = &candidate[..candidate.len() - CHECKSUM_LEN];
        let checksum = parsed.checksum;
        match &self.keyed {
            None => public_checksum(signed) == checksum,
            Some(keyed) => {
                (keyed.accept_unkeyed && public_checksum(signed) == checksum)
                    || std::iter::once(&keyed.current)
                        .chain(&keyed.previous)
                        .any(|hmac| hmac.checksum(signed) == checksum)
            }
        }
    }

    /// Whether `candidate` is a well-formed key of this format with a correct checksum.
    pub fn is_well_formed(&self, candidate: &[u8]) -> bool {
        self.check(candidate).is_some()
    }
}

/// A candidate key's digest and checksum digits, read by [`KeyFormat::parse`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Parsed {
    pub(crate) digest: KeyDigest,
    /// The checksum the key carries (not yet checked).
    pub(crate) checksum: u32,
    /// A key of a [`ForeignKeyFormat`]: no checksum to check.
    pub(crate) foreign: bool,
}

/// The public checksum of a key's signed part: the first 32 bits of its SHA-256.
fn public_checksum(signed: &[u8]) -> u32 {
    KeyDigest::of(signed).checksum()
}

impl Default for KeyFormat {
    /// Keys prefixed `tg_`.
    fn default() -> Self {
        Self {
            prefix: "tg".to_owned(),
            keyed: None,
        }
    }
}

/// `bytes` as a big-endian number in exactly `width` base62 digits.
fn base62_fixed(bytes: &[u8], width: usize) -> String {
    let mut number = bytes.to_vec();
    let mut digits = vec![b'0'; width];
    for slot in digits.iter_mut().rev() {
        let mut remainder = 0u32;
        for byte in &mut number {
            let value = (remainder << 8) | u32::from(*byte);
            *byte = u8::try_from(value / 62).expect("quotient of a 14-bit value by 62 fits a byte");
            remainder = value % 62;
        }
        *slot = ALPHABET[remainder as usize];
    }
    debug_assert!(
        number.iter().all(|&b| b == 0),
        "width too small for the value"
    );
    String::from_utf8(digits).expect("base62 digits are ASCII")
}

fn base62_decode_u32(digits: &[u8]) -> Option<u32> {
    let mut value: u64 = 0;
    for &d in digits {
        let digit = match d {
            b'0'..=b'9' => d - b'0',
            b'A'..=b'Z' => d - b'A' + 10,
            b'a'..=b'z' => d - b'a' + 36,
            _ => return None,
        };
        value = value * 62 + u64::from(digit);
    }
    u32::try_from(value).ok()
}

#[cfg(test)]
mod tests;
