//! JWKS documents as providers publish them: one bad entry never fails the set.

use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, KeyAlgorithm};
use serde::Deserialize;

use super::KeySet;
use crate::jwt::ConfigError;
use crate::jwt::keys::{JwtKey, invalid};

/// How a JWKS document is read into a [`KeySet`].
#[derive(Debug, Clone)]
pub(crate) struct JwksOptions {
    /// Keep `kty: oct` entries.
    pub(crate) symmetric: bool,
    /// Keep only keys of these algorithms (`None`: any).
    pub(crate) algorithms: Option<Vec<Algorithm>>,
    /// The algorithms an RSA key without `alg` serves.
    pub(crate) rsa_without_alg: Vec<Algorithm>,
}

impl Default for JwksOptions {
    fn default() -> Self {
        Self {
            symmetric: false,
            algorithms: None,
            rsa_without_alg: vec![Algorithm::RS256],
        }
    }
}

#[derive(Deserialize)]
struct Document {
    keys: Vec<serde_json::Value>,
}

/// Parses `json` (a JWKS document), skipping the entries that cannot verify signatures.
pub(crate) fn parse(json: &[u8], options: &JwksOptions) -> Result<KeySet, ConfigError> {
    let document: Document = serde_json::from_slice(json).map_err(|_| invalid("JWKS"))?;
    let mut out = KeySet::new();
    for entry in document.keys {
        for key in keys_of(entry, options) {
            let allowed = options
                .algorithms
                .as_ref()
                .is_none_or(|algs| algs.contains(&key.algorithm()));
            // A repeated kid for the same algorithm: the first entry wins.
            if allowed && out.insert(key).is_err() {
                log_debug!("JWKS entry repeats a kid for the same algorithm; skipped");
            }
        }
    }
    Ok(out)
}

/// The keys one JWKS entry yields: none, one, or (an RSA key without `alg`) one per
/// configured RSA algorithm.
fn keys_of(entry: serde_json::Value, options: &JwksOptions) -> Vec<JwtKey> {
    if entry.get("use").and_then(serde_json::Value::as_str) == Some("enc") {
        return Vec::new();
    }
    let Ok(mut jwk) = serde_json::from_value::<Jwk>(entry) else {
        // An unknown `kty`, `alg` or curve, or a malformed entry.
        return Vec::new();
    };
    match &jwk.algorithm {
        AlgorithmParameters::OctetKey(_) if !options.symmetric => Vec::new(),
        AlgorithmParameters::RSA(_) if jwk.common.key_algorithm.is_none() => options
            .rsa_without_alg
            .iter()
            .filter_map(|alg| {
                jwk.common.key_algorithm = Some(key_algorithm(*alg)?);
                JwtKey::from_jwk(&jwk).ok()
            })
            .collect(),
        _ => JwtKey::from_jwk(&jwk).into_iter().collect(),
    }
}

fn key_algorithm(alg: Algorithm) -> Option<KeyAlgorithm> {
    Some(match alg {
        Algorithm::RS256 => KeyAlgorithm::RS256,
        Algorithm::RS384 => KeyAlgorithm::RS384,
        Algorithm::RS512 => KeyAlgorithm::RS512,
        Algorithm::PS256 => KeyAlgorithm::PS256,
        Algorithm::PS384 => KeyAlgorithm::PS384,
        Algorithm::PS512 => KeyAlgorithm::PS512,
        _ => return None,
    })
}
