//! HMAC-SHA2 verification for `HS256`, `HS384` and `HS512` (RFC 2104, RFC 7518 §3.2).
//!
//! The key's two padded blocks are hashed once, when the key is made; a token then costs the
//! hash of its message and one more block, from copies of those states (no key setup, no
//! allocation, no per-thread verifier). `sha2` uses the CPU's SHA extensions when it has them.

use sha2::digest::core_api::BlockSizeUser;
use sha2::{Digest, Sha256, Sha384, Sha512};

use jsonwebtoken::Algorithm;

/// An HMAC key ready to verify: the hash states after the inner and the outer padded key.
#[derive(Clone)]
pub(crate) enum HmacKey {
    Sha256(Prepared<Sha256>),
    Sha384(Prepared<Sha384>),
    Sha512(Prepared<Sha512>),
}

impl HmacKey {
    /// The key for `algorithm`, or `None` if it is not an HMAC algorithm.
    pub(crate) fn new(secret: &[u8], algorithm: Algorithm) -> Option<Self> {
        Some(match algorithm {
            Algorithm::HS256 => Self::Sha256(Prepared::new(secret)),
            Algorithm::HS384 => Self::Sha384(Prepared::new(secret)),
            Algorithm::HS512 => Self::Sha512(Prepared::new(secret)),
            _ => return None,
        })
    }

    /// Whether `tag` is the HMAC of `message`, compared in constant time.
    pub(crate) fn verify(&self, message: &[u8], tag: &[u8]) -> bool {
        match self {
            Self::Sha256(key) => key.verify(message, tag),
            Self::Sha384(key) => key.verify(message, tag),
            Self::Sha512(key) => key.verify(message, tag),
        }
    }

    /// The tag's length in bytes.
    pub(crate) fn tag_len(&self) -> usize {
        match self {
            Self::Sha256(_) => 32,
            Self::Sha384(_) => 48,
            Self::Sha512(_) => 64,
        }
    }
}

#[derive(Clone)]
pub(crate) struct Prepared<D> {
    inner: D,
    outer: D,
}

impl<D: Digest + BlockSizeUser + Clone> Prepared<D> {
    fn new(secret: &[u8]) -> Self {
        // A key longer than a block is hashed first; a shorter one is padded with zeros.
        let mut block = vec![0u8; D::block_size()];
        if secret.len() > block.len() {
            let digest = D::digest(secret);
            block[..digest.len()].copy_from_slice(&digest);
        } else {
            block[..secret.len()].copy_from_slice(secret);
        }
        let pad = |byte: u8| {
            let padded: Vec<u8> = block.iter().map(|b| b ^ byte).collect();
            let mut state = D::new();
            state.update(&padded);
            state
        };
        let (inner, outer) = (pad(0x36), pad(0x5c));
        block.fill(0);
        Self { inner, outer }
    }

    fn verify(&self, message: &[u8], tag: &[u8]) -> bool {
        let mut inner = self.inner.clone();
        inner.update(message);
        let mut outer = self.outer.clone();
        outer.update(inner.finalize());
        constant_time_eq(&outer.finalize(), tag)
    }
}

/// Whether `a` and `b` are equal, in a time that depends on their lengths only.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 4231's test cases 1, 2 and 6 (a key longer than the block), all three hashes.
    #[test]
    fn rfc_4231_vectors() {
        let long_key = vec![0xaa; 131];
        let cases: [(&[u8], &[u8], [&str; 3]); 3] = [
            (
                &[0x0b; 20],
                b"Hi There",
                [
                    "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
                    "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6",
                    "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854",
                ],
            ),
            (
                b"Jefe",
                b"what do ya want for nothing?",
                [
                    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
                    "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649",
                    "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
                ],
            ),
            (
                &long_key,
                b"Test Using Larger Than Block-Size Key - Hash Key First",
                [
                    "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
                    "4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c60c2ef6ab4030fe8296248df163f44952",
                    "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f3526b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598",
                ],
            ),
        ];
        for (key, message, tags) in cases {
            for (algorithm, tag) in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512]
                .into_iter()
                .zip(tags)
            {
                let tag = hex(tag);
                let hmac = HmacKey::new(key, algorithm).unwrap();
                assert_eq!(hmac.tag_len(), tag.len());
                assert!(hmac.verify(message, &tag), "{algorithm:?}");
                let mut wrong = tag.clone();
                *wrong.last_mut().unwrap() ^= 1;
                assert!(!hmac.verify(message, &wrong));
                assert!(!hmac.verify(message, &tag[..tag.len() - 1]));
                assert!(!hmac.verify(b"another message", &tag));
            }
        }
        assert!(HmacKey::new(b"k", Algorithm::RS256).is_none());
    }
}
