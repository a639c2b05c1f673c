//! Configuration errors, reported when a layer or key is built.

use std::fmt;

use jsonwebtoken::Algorithm;

/// A JWT layer or key that cannot work as configured. Returned when it is built, never per
/// request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The key cannot be used with this algorithm (e.g. an RSA key for `HS256`).
    KeyAlgorithm {
        /// The algorithm asked for.
        algorithm: Algorithm,
    },
    /// An HMAC secret shorter than the hash output (RFC 7518 §3.2).
    WeakSecret {
        /// The minimum length for the algorithm, in bytes.
        min_bytes: usize,
    },
    /// The key material could not be read.
    InvalidKey {
        /// What was being read.
        what: &'static str,
    },
    /// A static key set without keys: every token would be refused.
    NoKeys,
    /// An allowed issuer or audience, or the scope claim name, that is the empty string.
    EmptyValue {
        /// `"issuer"`, `"audience"` or `"scope claim"`.
        what: &'static str,
    },
    /// A size limit, capacity or duration that must be positive is zero.
    Zero {
        /// The setting.
        what: &'static str,
    },
    /// Two keys with the same `kid` (or both without one) for the same algorithm: no token
    /// could tell them apart.
    DuplicateKey {
        /// The key id both keys carry, if any.
        kid: Option<String>,
        /// The algorithm both keys verify.
        algorithm: Algorithm,
    },
    /// A layer with several providers where one names no issuer: tokens are routed to their
    /// provider by `iss`.
    ProviderWithoutIssuer,
    /// Two providers of one layer accept the same issuer.
    DuplicateIssuer {
        /// The issuer.
        issuer: String,
    },
    /// A provider's allowed algorithms leave none its keys could verify.
    NoAlgorithms,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::KeyAlgorithm { algorithm } => {
                write!(f, "the key cannot be used with algorithm {algorithm:?}")
            }
            Self::WeakSecret { min_bytes } => {
                write!(f, "the HMAC secret must be at least {min_bytes} bytes long")
            }
            Self::InvalidKey { what } => write!(f, "invalid key: cannot read {what}"),
            Self::NoKeys => f.write_str("the key set is empty"),
            Self::EmptyValue { what } => write!(f, "the {what} must not be empty"),
            Self::Zero { what } => write!(f, "{what} must be greater than zero"),
            Self::DuplicateKey { kid: Some(kid), algorithm } => write!(
                f,
                "two keys with kid {kid:?} for {algorithm:?}: tokens cannot tell them apart"
            ),
            Self::DuplicateKey { kid: None, algorithm } => write!(
                f,
                "two keys without kid for {algorithm:?}: tokens cannot tell them apart"
            ),
            Self::ProviderWithoutIssuer => f.write_str(
                "a layer with several providers needs an issuer for each (tokens are routed by iss)",
            ),
            Self::DuplicateIssuer { issuer } => {
                write!(f, "two providers accept the issuer {issuer:?}")
            }
            Self::NoAlgorithms => f.write_str("no signature algorithm is allowed"),
        }
    }
}

impl std::error::Error for ConfigError {}
