//! Verification keys, each pinned to one algorithm (from PEM, DER or JWK).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind};

use super::ConfigError;
use super::hmac::HmacKey;

/// A verification key pinned to one algorithm, with an optional key id (`kid`).
///
/// The token's `alg` header never chooses how the key is used: a token whose `alg` differs
/// from the key's algorithm is refused, so an RSA public key can never be used as an HMAC
/// secret (the classic algorithm-confusion attack), and `none` matches no key.
///
/// `Debug` never shows key material.
#[derive(Clone)]
pub struct JwtKey {
    /// Unique per key material and algorithm (clones share it): names the key in the
    /// per-thread verifier cache.
    #[cfg_attr(
        not(any(feature = "aws-lc-rs", feature = "rust-crypto")),
        allow(dead_code)
    )]
    id: u64,
    kid: Option<Arc<str>>,
    algorithm: Algorithm,
    alg_name: &'static str,
    key: DecodingKey,
    /// For `HS*`: the secret's padded blocks, hashed once.
    hmac: Option<Arc<HmacKey>>,
}

impl JwtKey {
    fn new(algorithm: Algorithm, key: DecodingKey) -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            kid: None,
            algorithm,
            alg_name: alg_name(algorithm),
            key,
            hmac: None,
        }
    }

    /// An HMAC secret for `HS256`, `HS384` or `HS512`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::KeyAlgorithm`] if `algorithm` is not an HMAC algorithm,
    /// [`ConfigError::WeakSecret`] if the secret is shorter than the hash output (RFC 7518 §3.2).
    pub fn hmac(secret: impl AsRef<[u8]>, algorithm: Algorithm) -> Result<Self, ConfigError> {
        let secret = secret.as_ref();
        let min = match algorithm {
            Algorithm::HS256 => 32,
            Algorithm::HS384 => 48,
            Algorithm::HS512 => 64,
            _ => return Err(ConfigError::KeyAlgorithm { algorithm }),
        };
        if secret.len() < min {
            return Err(ConfigError::WeakSecret { min_bytes: min });
        }
        let mut key = Self::new(algorithm, DecodingKey::from_secret(secret));
        key.hmac = HmacKey::new(secret, algorithm).map(Arc::new);
        Ok(key)
    }

    /// An RSA public key in PEM (`BEGIN PUBLIC KEY` or `BEGIN RSA PUBLIC KEY`) for `RS*`/`PS*`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::KeyAlgorithm`] for a non-RSA algorithm, [`ConfigError::InvalidKey`] if
    /// the PEM does not hold an RSA public key.
    pub fn rsa_pem(pem: impl AsRef<[u8]>, algorithm: Algorithm) -> Result<Self, ConfigError> {
        require(is_rsa(algorithm), algorithm)?;
        let key = DecodingKey::from_rsa_pem(pem.as_ref()).map_err(|_| invalid("RSA PEM"))?;
        Ok(Self::new(algorithm, key))
    }

    /// An RSA public key as PKCS#1 DER (`RSAPublicKey`) for `RS*`/`PS*`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::KeyAlgorithm`] for a non-RSA algorithm.
    pub fn rsa_der(der: impl AsRef<[u8]>, algorithm: Algorithm) -> Result<Self, ConfigError> {
        require(is_rsa(algorithm), algorithm)?;
        Ok(Self::new(
            algorithm,
            DecodingKey::from_rsa_der(der.as_ref()),
        ))
    }

    /// An EC public key in PEM (P-256 for `ES256`, P-384 for `ES384`).
    ///
    /// # Errors
    ///
    /// [`ConfigError::KeyAlgorithm`] for a non-EC algorithm, [`ConfigError::InvalidKey`] if
    /// the PEM does not hold an EC public key of the algorithm's curve.
    pub fn ec_pem(pem: impl AsRef<[u8]>, algorithm: Algorithm) -> Result<Self, ConfigError> {
        require(
            matches!(algorithm, Algorithm::ES256 | Algorithm::ES384),
            algorithm,
        )?;
        let key = DecodingKey::from_ec_pem(pem.as_ref()).map_err(|_| invalid("EC PEM"))?;
        check_ec_point(&key, algorithm)?;
        Ok(Self::new(algorithm, key))
    }

    /// An EC public key as an uncompressed SEC1 point (`04 || x || y`).
    ///
    /// # Errors
    ///
    /// As [`JwtKey::ec_pem`].
    pub fn ec_der(point: impl AsRef<[u8]>, algorithm: Algorithm) -> Result<Self, ConfigError> {
        require(
            matches!(algorithm, Algorithm::ES256 | Algorithm::ES384),
            algorithm,
        )?;
        let key = DecodingKey::from_ec_der(point.as_ref());
        check_ec_point(&key, algorithm)?;
        Ok(Self::new(algorithm, key))
    }

    /// An Ed25519 public key in PEM, for `EdDSA`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidKey`] if the PEM does not hold an Ed25519 public key.
    pub fn ed_pem(pem: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        let key = DecodingKey::from_ed_pem(pem.as_ref()).map_err(|_| invalid("Ed25519 PEM"))?;
        check_ed(&key)?;
        Ok(Self::new(Algorithm::EdDSA, key))
    }

    /// An Ed25519 public key as its 32 raw bytes, for `EdDSA`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidKey`] if it is not 32 bytes long.
    pub fn ed_der(raw: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        let key = DecodingKey::from_ed_der(raw.as_ref());
        check_ed(&key)?;
        Ok(Self::new(Algorithm::EdDSA, key))
    }

    /// A key from a JWK (RFC 7517). The JWK's `kid` becomes the key id. The algorithm comes
    /// from the JWK's `alg`; without one it is inferred only where unambiguous (`EC` keys
    /// from their curve, `OKP` Ed25519 keys); RSA and `oct` keys without `alg` are refused.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidKey`] for keys marked `use: enc`, unsupported
    /// key types or a missing `alg` where it cannot be inferred; [`ConfigError::KeyAlgorithm`]
    /// when `alg` does not fit the key type.
    pub(crate) fn from_jwk(jwk: &Jwk) -> Result<Self, ConfigError> {
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            return Err(invalid("JWK for encryption"));
        }
        let declared = match jwk.common.key_algorithm {
            None => None,
            Some(alg) => Some(signing_algorithm(alg)?),
        };
        let algorithm = match (&jwk.algorithm, declared) {
            (AlgorithmParameters::RSA(_), Some(alg)) if is_rsa(alg) => alg,
            (AlgorithmParameters::EllipticCurve(p), declared) => {
                let by_curve = match p.curve {
                    EllipticCurve::P256 => Algorithm::ES256,
                    EllipticCurve::P384 => Algorithm::ES384,
                    _ => return Err(invalid("EC JWK curve")),
                };
                match declared {
                    Some(alg) if alg != by_curve => {
                        return Err(ConfigError::KeyAlgorithm { algorithm: alg });
                    }
                    _ => by_curve,
                }
            }
            (AlgorithmParameters::OctetKeyPair(p), Some(Algorithm::EdDSA) | None) => {
                if p.curve != EllipticCurve::Ed25519 {
                    return Err(invalid("OKP JWK curve"));
                }
                Algorithm::EdDSA
            }
            (AlgorithmParameters::OctetKey(_), Some(alg)) if is_hmac(alg) => alg,
            (_, Some(alg)) => return Err(ConfigError::KeyAlgorithm { algorithm: alg }),
            (_, None) => return Err(invalid("JWK without alg")),
        };
        let key = DecodingKey::from_jwk(jwk).map_err(|_| invalid("JWK"))?;
        if is_hmac(algorithm) {
            let secret = key.try_get_as_bytes().map_err(|_| invalid("oct JWK"))?;
            return Ok(Self::hmac(secret, algorithm)?.with_kid_opt(jwk.common.key_id.as_deref()));
        }
        let mut out = Self::new(algorithm, key);
        if algorithm == Algorithm::EdDSA {
            check_ed(&out.key)?;
        } else if matches!(algorithm, Algorithm::ES256 | Algorithm::ES384) {
            check_ec_point(&out.key, algorithm)?;
        }
        out.kid = jwk.common.key_id.as_deref().map(Arc::from);
        Ok(out)
    }

    /// A key from a JWK (RFC 7517) in JSON text. The JWK's `kid` becomes the key id. The
    /// algorithm comes from the JWK's `alg`; without one it is inferred only where
    /// unambiguous (`EC` keys from their curve, `OKP` Ed25519 keys); RSA and `oct` keys
    /// without `alg` are refused, as are keys marked `use: enc`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidKey`] if it is not a JWK, [`ConfigError::KeyAlgorithm`] when `alg` does not fit the key type.
    pub fn from_jwk_json(json: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        let jwk: Jwk = serde_json::from_slice(json.as_ref()).map_err(|_| invalid("JWK JSON"))?;
        Self::from_jwk(&jwk)
    }

    /// Sets the key id that tokens name in their `kid` header.
    #[must_use]
    pub fn with_kid(mut self, kid: impl AsRef<str>) -> Self {
        self.kid = Some(Arc::from(kid.as_ref()));
        self
    }

    /// The key id, shared.
    #[inline]
    pub(crate) fn kid_arc(&self) -> Option<Arc<str>> {
        self.kid.clone()
    }

    fn with_kid_opt(mut self, kid: Option<&str>) -> Self {
        self.kid = kid.map(Arc::from);
        self
    }

    /// The key id, if any.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The one algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    #[cfg_attr(
        not(any(feature = "aws-lc-rs", feature = "rust-crypto")),
        allow(dead_code)
    )]
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn alg_name(&self) -> &'static str {
        self.alg_name
    }

    /// The prepared HMAC key of an `HS*` key.
    pub(crate) fn hmac_key(&self) -> Option<&HmacKey> {
        self.hmac.as_deref()
    }

    pub(crate) fn decoding_key(&self) -> &DecodingKey {
        &self.key
    }

    /// Whether `other` is the same key material for the same algorithm and kid.
    pub(crate) fn same_as(&self, other: &Self) -> bool {
        self.algorithm == other.algorithm
            && self.kid == other.kid
            && match (self.key.kind(), other.key.kind()) {
                (DecodingKeyKind::SecretOrDer(a), DecodingKeyKind::SecretOrDer(b)) => a == b,
                (
                    DecodingKeyKind::RsaModulusExponent { n, e },
                    DecodingKeyKind::RsaModulusExponent { n: n2, e: e2 },
                ) => n == n2 && e == e2,
                _ => false,
            }
    }
}

impl fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

fn alg_name(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::HS256 => "HS256",
        Algorithm::HS384 => "HS384",
        Algorithm::HS512 => "HS512",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::EdDSA => "EdDSA",
        // Every constructor restricts keys to the algorithms above.
        _ => "\u{0}unsupported",
    }
}

pub(crate) fn is_rsa(algorithm: Algorithm) -> bool {
    matches!(
        algorithm,
        Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512
    )
}

fn is_hmac(algorithm: Algorithm) -> bool {
    matches!(
        algorithm,
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
    )
}

fn signing_algorithm(alg: KeyAlgorithm) -> Result<Algorithm, ConfigError> {
    Ok(match alg {
        KeyAlgorithm::HS256 => Algorithm::HS256,
        KeyAlgorithm::HS384 => Algorithm::HS384,
        KeyAlgorithm::HS512 => Algorithm::HS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return Err(invalid("JWK alg")),
    })
}

fn require(ok: bool, algorithm: Algorithm) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError::KeyAlgorithm { algorithm })
    }
}

fn check_ec_point(key: &DecodingKey, algorithm: Algorithm) -> Result<(), ConfigError> {
    let expected = if algorithm == Algorithm::ES256 {
        65
    } else {
        97
    };
    match key.kind() {
        DecodingKeyKind::SecretOrDer(point) if point.len() == expected && point[0] == 4 => Ok(()),
        _ => Err(invalid("EC public key for this curve")),
    }
}

fn check_ed(key: &DecodingKey) -> Result<(), ConfigError> {
    match key.kind() {
        DecodingKeyKind::SecretOrDer(raw) if raw.len() == 32 => Ok(()),
        _ => Err(invalid("Ed25519 public key")),
    }
}

pub(crate) fn invalid(what: &'static str) -> ConfigError {
    ConfigError::InvalidKey { what }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwk_parsing_pins_the_algorithm_and_refuses_what_it_cannot_pin() {
        let ok = [
            (
                r#"{"kty":"oct","alg":"HS256","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}"#,
                Algorithm::HS256,
            ),
            (
                r#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#,
                Algorithm::ES256,
            ),
            (
                r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#,
                Algorithm::EdDSA,
            ),
        ];
        for (jwk, alg) in ok {
            assert_eq!(
                JwtKey::from_jwk_json(jwk).unwrap().algorithm(),
                alg,
                "{jwk}"
            );
        }
        let refused = [
            // An HMAC key without `alg`, or too short for its algorithm.
            r#"{"kty":"oct","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}"#,
            r#"{"kty":"oct","alg":"HS256","k":"c2hvcnQ"}"#,
            // An RSA key without `alg` (RS256? PS512?), or with an HMAC `alg`.
            r#"{"kty":"RSA","n":"sXch","e":"AQAB"}"#,
            r#"{"kty":"RSA","alg":"HS256","n":"sXch","e":"AQAB"}"#,
            // An EC key whose `alg` does not match its curve, an encryption key.
            r#"{"kty":"EC","alg":"ES384","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#,
            r#"{"kty":"OKP","use":"enc","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#,
            r#"{"kty":"OKP","crv":"Ed25519","x":"c2hvcnQ"}"#,
            "not json",
        ];
        for jwk in refused {
            assert!(JwtKey::from_jwk_json(jwk).is_err(), "{jwk}");
        }
        assert!(JwtKey::hmac([0; 31], Algorithm::HS256).is_err());
        assert!(JwtKey::hmac([0; 32], Algorithm::RS256).is_err());
    }
}
