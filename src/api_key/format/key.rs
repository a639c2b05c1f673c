//! The plaintext key ([`ApiKey`]) and what is stored of it ([`KeyDigest`]).

use std::fmt;

use sha2::{Digest as _, Sha256};

use super::CHECKSUM_LEN;

/// A plaintext API key. Shown to its owner once, at creation; never stored, never logged.
///
/// `Debug` and `Display` are redacted; [`ApiKey::expose`] is the one way to read it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(pub(super) String);

impl ApiKey {
    /// Wraps a key received from elsewhere (for example a key to preload from configuration).
    pub fn from_plaintext(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key itself, to hand to its owner.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Consumes the wrapper, returning the key.
    pub fn into_plaintext(self) -> String {
        self.0
    }

    /// The digest stored at rest: the SHA-256 of the whole key string (what
    /// `printf %s "$KEY" | sha256sum` prints, as [`KeyDigest::to_hex`]).
    pub fn digest(&self) -> KeyDigest {
        KeyDigest::of(self.0.as_bytes())
    }

    /// The digest tollgate 0.1 stored: the SHA-256 of the key without its 6-character
    /// checksum. Looked up as a fallback with
    /// [`ApiKeysBuilder::legacy_digests`](crate::api_key::ApiKeysBuilder::legacy_digests).
    pub fn legacy_digest(&self) -> KeyDigest {
        legacy_digest(self.0.as_bytes())
    }

    /// A masked form safe for listings and logs: the prefix and the last four characters,
    /// e.g. `tg_…a1B2`.
    pub fn masked(&self) -> String {
        mask(&self.0)
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({})", mask(&self.0))
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&mask(&self.0))
    }
}

/// The 0.1 digest of `key`: the SHA-256 without the last 6 characters.
pub(crate) fn legacy_digest(key: &[u8]) -> KeyDigest {
    let signed = key
        .len()
        .checked_sub(CHECKSUM_LEN)
        .map_or(key, |end| &key[..end]);
    KeyDigest::of(signed)
}

/// The masked form of a key: its prefix and last four characters.
pub(crate) fn mask(key: &str) -> String {
    let prefix = key.rfind('_').map_or("", |i| &key[..=i]);
    let tail = key
        .char_indices()
        .rev()
        .nth(3)
        .map_or("", |(i, _)| &key[i..]);
    if key.len() < prefix.len() + 8 {
        return format!("{prefix}…");
    }
    format!("{prefix}…{tail}")
}

/// The SHA-256 digest of an API key: what stores keep and look keys up by.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyDigest([u8; 32]);

impl KeyDigest {
    /// The SHA-256 of `bytes`: for a key's bytes, its digest ([`ApiKey::digest`]).
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// Wraps 32 digest bytes read from a store.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Its first 32 bits: the public checksum when this is the digest of a key's signed part.
    pub(super) fn checksum(&self) -> u32 {
        u32::from_be_bytes([self.0[0], self.0[1], self.0[2], self.0[3]])
    }

    /// Lower-case hex, 64 characters.
    pub fn to_hex(&self) -> String {
        use fmt::Write as _;
        self.0.iter().fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }

    /// Parses 64 hex characters.
    pub fn from_hex(hex: &str) -> Option<Self> {
        let hex = hex.as_bytes();
        if hex.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            *byte = u8::try_from(hi * 16 + lo).ok()?;
        }
        Some(Self(out))
    }
}

impl fmt::Debug for KeyDigest {
    /// Only the first 4 bytes: enough to correlate, not a lookup handle.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "KeyDigest({:02x}{:02x}{:02x}{:02x}…)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}
