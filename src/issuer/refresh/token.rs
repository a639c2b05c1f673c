//! The refresh-token format, its digest, and how a successor is derived.
//!
//! A token is `rt_` followed by 43 base64url characters: 32 bytes (256 bits) from the OS
//! CSPRNG. At rest only the SHA-256 of those bytes is kept ([`TokenDigest`]): the token carries
//! 256 bits of entropy, so a fast hash is right (nothing for a slow hash to protect).
//!
//! A successor is derived, not drawn: `SHA-256("tollgate/refresh/successor/v1" || token ||
//! seed)`, where `seed` is 32 CSPRNG bytes stored with the token's record. So the successor
//! is as unpredictable as a fresh draw (it needs the plaintext, which is never stored, and
//! the seed, which never leaves the store), yet computing it twice gives the same token.
//! That is what lets the grace window and two racing refreshes return *the same* successor
//! without storing any plaintext or encryption key: the store only has to let one successor
//! in, and every caller presenting the predecessor can re-derive it.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

const PREFIX: &str = "rt_";
const ENCODED_LEN: usize = 43;

/// A refresh token in plaintext: handed to the client once, never stored. `Debug` redacts it.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken {
    bytes: [u8; 32],
}

impl RefreshToken {
    /// A fresh token: 32 bytes from the OS CSPRNG.
    ///
    /// # Panics
    ///
    /// If the operating system's random number generator fails.
    pub(crate) fn generate() -> Self {
        Self {
            bytes: random_bytes(),
        }
    }

    /// Parses a token as the client sends it. `None` for anything that is not `rt_` and 43
    /// base64url characters: such a token is refused without a store lookup.
    pub fn parse(token: &str) -> Option<Self> {
        let body = token.strip_prefix(PREFIX)?;
        if body.len() != ENCODED_LEN {
            return None;
        }
        let decoded = URL_SAFE_NO_PAD.decode(body).ok()?;
        Some(Self {
            bytes: decoded.try_into().ok()?,
        })
    }

    /// The token as sent to the client.
    pub fn to_plaintext(&self) -> String {
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(self.bytes))
    }

    /// What the store keeps and looks the token up by.
    pub fn digest(&self) -> TokenDigest {
        TokenDigest(Sha256::digest(self.bytes).into())
    }

    /// The successor of this token given its record's `seed` (see the module docs).
    pub(crate) fn successor(&self, seed: &[u8; 32]) -> Self {
        let mut hash = Sha256::new();
        hash.update(b"tollgate/refresh/successor/v1");
        hash.update(self.bytes);
        hash.update(seed);
        Self {
            bytes: hash.finalize().into(),
        }
    }
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshToken(<redacted>)")
    }
}

/// The SHA-256 of a refresh token: what the store keeps instead of the token.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    /// A digest read back from storage.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A prefix is enough to tell digests apart in logs.
        write!(
            f,
            "TokenDigest({:02x}{:02x}{:02x}{:02x}…)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

/// Names one chain of rotated refresh tokens, from one login. Revoking it kills every token
/// of the chain.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub struct FamilyId(String);

impl FamilyId {
    /// A fresh random id (128 bits).
    pub(crate) fn generate() -> Self {
        Self(super::super::token_issuer::random_id())
    }

    /// An id read back from storage.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FamilyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// 32 bytes from the OS CSPRNG.
pub(crate) fn random_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random number generator failed");
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_round_trips_and_malformed_tokens_are_refused() {
        let token = RefreshToken::generate();
        let text = token.to_plaintext();
        assert_eq!(text.len(), 3 + 43);
        assert_eq!(RefreshToken::parse(&text), Some(token.clone()));
        assert_ne!(RefreshToken::generate(), token);
        for bad in [
            "",
            "rt_",
            &text[..text.len() - 1],
            &format!("{text}A"),
            &text.replacen("rt_", "xx_", 1),
            &format!("rt_{}", "!".repeat(43)),
            // 43 characters whose last one carries bits beyond 256: not canonical.
            &format!("rt_{}", "_".repeat(43)),
        ] {
            assert_eq!(RefreshToken::parse(bad), None, "{bad:?}");
        }
        assert_eq!(format!("{token:?}"), "RefreshToken(<redacted>)");
    }

    #[test]
    fn successors_are_deterministic_per_seed() {
        let token = RefreshToken::generate();
        let seed = random_bytes();
        assert_eq!(token.successor(&seed), token.successor(&seed));
        assert_ne!(token.successor(&seed), token.successor(&random_bytes()));
        assert_ne!(token.successor(&seed).digest(), token.digest());
    }
}
