//! Signing keys: a private key pinned to one algorithm and a `kid`, with the public half
//! derived once, for the JWT layer ([`JwtKey`]) and for the JWKS document ([`Jwk`]).

use std::fmt;
use std::sync::Arc;

use jsonwebtoken::jwk::{AlgorithmParameters, CommonParameters, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey};

use crate::jwt::{ConfigError, JwtKey};

/// A key the [`TokenIssuer`](super::TokenIssuer) signs with: HMAC, RSA, EC or Ed25519, pinned
/// to one algorithm and named by a `kid` (written into every token's header, so verifiers
/// pick the right key during a rotation).
///
/// The verification half is derived when the key is made: [`verification_key`] for the JWT
/// layer, [`public_jwk`] for the JWKS document (HMAC secrets are never published).
///
/// `Debug` never shows key material.
///
/// [`verification_key`]: SigningKey::verification_key
/// [`public_jwk`]: SigningKey::public_jwk
#[derive(Clone)]
pub struct SigningKey(Arc<Inner>);

struct Inner {
    kid: String,
    algorithm: Algorithm,
    key: EncodingKey,
    verify: JwtKey,
    public: Option<Jwk>,
}

impl SigningKey {
    /// An HMAC secret for `HS256`, `HS384` or `HS512`. Tokens signed with it can only be
    /// verified by holders of the same secret, so it never appears in the JWKS document.
    ///
    /// # Errors
    ///
    /// As [`JwtKey::hmac`]: a non-HMAC algorithm or a secret shorter than the hash output.
    pub fn hmac(
        kid: impl Into<String>,
        secret: impl AsRef<[u8]>,
        algorithm: Algorithm,
    ) -> Result<Self, ConfigError> {
        let kid = kid.into();
        let verify = JwtKey::hmac(secret.as_ref(), algorithm)?.with_kid(&kid);
        Ok(Self::assemble(
            kid,
            algorithm,
            EncodingKey::from_secret(secret.as_ref()),
            verify,
            None,
        ))
    }

    /// An RSA private key in PEM (PKCS#1 or PKCS#8) for `RS*`/`PS*`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::KeyAlgorithm`] for a non-RSA algorithm, [`ConfigError::InvalidKey`] if
    /// the PEM does not hold an RSA private key.
    pub fn rsa_pem(
        kid: impl Into<String>,
        pem: impl AsRef<[u8]>,
        algorithm: Algorithm,
    ) -> Result<Self, ConfigError> {
        let rsa = matches!(
            algorithm,
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
        );
        if !rsa {
            return Err(ConfigError::KeyAlgorithm { algorithm });
        }
        let key = EncodingKey::from_rsa_pem(pem.as_ref()).map_err(|_| invalid("RSA PEM"))?;
        Self::asymmetric(kid.into(), algorithm, key)
    }

    /// An EC private key in PKCS#8 PEM: P-256 for `ES256`, P-384 for `ES384`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::KeyAlgorithm`] for a non-EC algorithm, [`ConfigError::InvalidKey`] if
    /// the PEM does not hold an EC private key of the algorithm's curve.
    pub fn ec_pem(
        kid: impl Into<String>,
        pem: impl AsRef<[u8]>,
        algorithm: Algorithm,
    ) -> Result<Self, ConfigError> {
        if !matches!(algorithm, Algorithm::ES256 | Algorithm::ES384) {
            return Err(ConfigError::KeyAlgorithm { algorithm });
        }
        let key = EncodingKey::from_ec_pem(pem.as_ref()).map_err(|_| invalid("EC PEM"))?;
        Self::asymmetric(kid.into(), algorithm, key)
    }

    /// An Ed25519 private key in PKCS#8 PEM, for `EdDSA`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidKey`] if the PEM does not hold an Ed25519 private key.
    pub fn ed_pem(kid: impl Into<String>, pem: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        let key = EncodingKey::from_ed_pem(pem.as_ref()).map_err(|_| invalid("Ed25519 PEM"))?;
        Self::asymmetric(kid.into(), Algorithm::EdDSA, key)
    }

    fn asymmetric(
        kid: String,
        algorithm: Algorithm,
        key: EncodingKey,
    ) -> Result<Self, ConfigError> {
        let jwk = public_jwk(&kid, &key, algorithm)?;
        // The JWT layer reads the public half exactly as a verifier fetching the JWKS would.
        let verify = JwtKey::from_jwk(&jwk)?;
        // Sign once now, so a key the backend cannot use fails here and not per token.
        sign(&key, algorithm, b"tollgate key check")
            .map_err(|_| invalid("private key (the crypto backend refused it)"))?;
        Ok(Self::assemble(kid, algorithm, key, verify, Some(jwk)))
    }

    fn assemble(
        kid: String,
        algorithm: Algorithm,
        key: EncodingKey,
        verify: JwtKey,
        public: Option<Jwk>,
    ) -> Self {
        Self(Arc::new(Inner {
            kid,
            algorithm,
            key,
            verify,
            public,
        }))
    }

    /// The key id written into the `kid` header.
    pub fn kid(&self) -> &str {
        &self.0.kid
    }

    /// The one algorithm this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        self.0.algorithm
    }

    /// The key that verifies this key's signatures, for a [`KeySet`](crate::jwt::KeySet).
    pub fn verification_key(&self) -> &JwtKey {
        &self.0.verify
    }

    /// The public key as a JWK (with `kid`, `alg` and `use: sig`), or `None` for an HMAC
    /// secret, which must never be published.
    pub fn public_jwk(&self) -> Option<&Jwk> {
        self.0.public.as_ref()
    }

    /// Signs `message` (`base64url(header).base64url(claims)`), returning the base64url
    /// signature.
    pub(crate) fn sign(&self, message: &[u8]) -> Result<String, jsonwebtoken::errors::Error> {
        sign(&self.0.key, self.0.algorithm, message)
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.0.kid)
            .field("algorithm", &self.0.algorithm)
            .finish_non_exhaustive()
    }
}

fn invalid(what: &'static str) -> ConfigError {
    ConfigError::InvalidKey { what }
}

/// The crypto backend chosen by this crate's features, used directly (as the JWT layer does)
/// so that jsonwebtoken's process-wide default provider does not matter.
#[cfg(any(feature = "aws-lc-rs", feature = "rust-crypto"))]
fn provider() -> &'static jsonwebtoken::crypto::CryptoProvider {
    #[cfg(feature = "aws-lc-rs")]
    return &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER;
    #[cfg(all(feature = "rust-crypto", not(feature = "aws-lc-rs")))]
    return &jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER;
}

#[cfg(any(feature = "aws-lc-rs", feature = "rust-crypto"))]
fn sign(
    key: &EncodingKey,
    algorithm: Algorithm,
    message: &[u8],
) -> Result<String, jsonwebtoken::errors::Error> {
    use base64::Engine as _;
    let signer = (provider().signer_factory)(&algorithm, key)?;
    let signature = signer.try_sign(message)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature))
}

/// Without a backend feature, the provider the application installed signs.
#[cfg(not(any(feature = "aws-lc-rs", feature = "rust-crypto")))]
fn sign(
    key: &EncodingKey,
    algorithm: Algorithm,
    message: &[u8],
) -> Result<String, jsonwebtoken::errors::Error> {
    jsonwebtoken::crypto::sign(message, key, algorithm)
}

/// The public JWK of an asymmetric private key.
fn public_jwk(kid: &str, key: &EncodingKey, algorithm: Algorithm) -> Result<Jwk, ConfigError> {
    Ok(Jwk {
        common: CommonParameters {
            public_key_use: Some(PublicKeyUse::Signature),
            key_algorithm: Some(algorithm.into()),
            key_id: Some(kid.to_owned()),
            ..CommonParameters::default()
        },
        algorithm: public_params(key, algorithm)?,
    })
}

/// The public components of an asymmetric private key, by the backend chosen by features.
#[cfg(any(feature = "aws-lc-rs", feature = "rust-crypto"))]
fn public_params(
    key: &EncodingKey,
    algorithm: Algorithm,
) -> Result<AlgorithmParameters, ConfigError> {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::jwk::{
        EllipticCurve, EllipticCurveKeyParameters, EllipticCurveKeyType, OctetKeyPairParameters,
        OctetKeyPairType, RSAKeyParameters, RSAKeyType,
    };

    let utils = &provider().key_utils;
    let b64 = |bytes: Vec<u8>| URL_SAFE_NO_PAD.encode(bytes);
    Ok(match algorithm {
        Algorithm::ES256 | Algorithm::ES384 => {
            let (curve, x, y) =
                (utils.ec_pub_components_from_private_key)(key.as_bytes(), algorithm)
                    .map_err(|_| invalid("EC private key"))?;
            AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters {
                key_type: EllipticCurveKeyType::EC,
                curve,
                x: b64(x),
                y: b64(y),
            })
        }
        Algorithm::EdDSA => {
            let x =
                (utils.ed_pub_components_from_private_key)(key.as_bytes(), &EllipticCurve::Ed25519)
                    .map_err(|_| invalid("Ed25519 private key"))?;
            AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                key_type: OctetKeyPairType::OctetKeyPair,
                curve: EllipticCurve::Ed25519,
                x: b64(x),
            })
        }
        _ => {
            let (n, e) = (utils.rsa_pub_components_from_private_key)(key.as_bytes())
                .map_err(|_| invalid("RSA private key"))?;
            AlgorithmParameters::RSA(RSAKeyParameters {
                key_type: RSAKeyType::RSA,
                n: b64(n),
                e: b64(e),
            })
        }
    })
}

/// Without a backend feature, the provider the application installed derives them.
#[cfg(not(any(feature = "aws-lc-rs", feature = "rust-crypto")))]
fn public_params(
    key: &EncodingKey,
    algorithm: Algorithm,
) -> Result<AlgorithmParameters, ConfigError> {
    Ok(Jwk::from_encoding_key(key, algorithm)
        .map_err(|_| invalid("private key"))?
        .algorithm)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/fixtures/jwt/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(path).unwrap()
    }

    #[test]
    fn every_key_type_derives_a_pinned_public_half() {
        let keys = [
            SigningKey::rsa_pem("r", fixture("rsa.key"), Algorithm::RS256).unwrap(),
            SigningKey::rsa_pem("p", fixture("rsa.key"), Algorithm::PS256).unwrap(),
            SigningKey::ec_pem("e", fixture("ec256.key"), Algorithm::ES256).unwrap(),
            SigningKey::ec_pem("e3", fixture("ec384.key"), Algorithm::ES384).unwrap(),
            SigningKey::ed_pem("d", fixture("ed25519.key")).unwrap(),
        ];
        for key in &keys {
            let jwk = key.public_jwk().expect("asymmetric keys are published");
            assert_eq!(jwk.common.key_id.as_deref(), Some(key.kid()));
            assert_eq!(key.verification_key().algorithm(), key.algorithm());
            assert_eq!(key.verification_key().kid(), Some(key.kid()));
            let json = serde_json::to_string(jwk).unwrap();
            assert!(!json.contains("\"d\":"), "no private member: {json}");
        }
        let hmac = SigningKey::hmac("h", [7; 32], Algorithm::HS256).unwrap();
        assert!(
            hmac.public_jwk().is_none(),
            "HMAC secrets are never published"
        );
        assert!(!format!("{hmac:?}").contains('7'));
    }

    #[test]
    fn mismatched_or_unreadable_keys_are_refused() {
        assert!(SigningKey::rsa_pem("r", fixture("rsa.key"), Algorithm::ES256).is_err());
        assert!(SigningKey::ec_pem("e", fixture("rsa.key"), Algorithm::ES256).is_err());
        assert!(SigningKey::ec_pem("e", fixture("ec256.key"), Algorithm::ES384).is_err());
        assert!(SigningKey::ed_pem("d", b"not a pem").is_err());
        assert!(SigningKey::hmac("h", [7; 31], Algorithm::HS256).is_err());
    }
}
