//! The issuer's public keys as a JWKS document (RFC 7517 §5).

use jsonwebtoken::jwk::Jwk;
use serde::{Deserialize, Serialize};

/// A JWKS document, `{"keys":[…]}`, of public signing keys: serve it (as JSON) at
/// `/.well-known/jwks.json`. Made by [`TokenIssuer::jwks`](super::TokenIssuer::jwks).
///
/// Serve it with a short `Cache-Control: max-age` (minutes): verifiers re-fetch on an
/// unknown `kid` anyway, and a retired key stays in the document until the tokens it signed
/// have expired.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    keys: Vec<Jwk>,
}

impl Jwks {
    /// The keys, current first.
    pub fn keys(&self) -> &[Jwk] {
        &self.keys
    }

    /// The document as JSON text.
    pub fn to_json(&self) -> String {
        // A `Jwk` is plain strings and enums: serializing it cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| String::from(r#"{"keys":[]}"#))
    }
}

impl FromIterator<Jwk> for Jwks {
    fn from_iter<T: IntoIterator<Item = Jwk>>(iter: T) -> Self {
        Self {
            keys: iter.into_iter().collect(),
        }
    }
}
