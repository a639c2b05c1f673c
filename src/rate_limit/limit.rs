//! Named limits and configuration errors.

use std::fmt;
use std::sync::Arc;

use crate::Quota;

/// A [`Quota`] with the name it is reported under in the `RateLimit-Policy` and `RateLimit`
/// fields (e.g. `"burst"` for 10/s and `"hourly"` for 1000/h).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    name: Arc<str>,
    quota: Quota,
}

/// The longest limit name, in bytes.
pub(crate) const MAX_NAME_LEN: usize = 64;

impl Limit {
    /// A limit called `name`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidName`] unless `name` is 1 to 64 characters of visible ASCII other
    /// than `"` and `\` (it is sent as a structured-field string).
    pub fn new(name: impl AsRef<str>, quota: Quota) -> Result<Self, ConfigError> {
        let name = name.as_ref();
        let ok = !name.is_empty()
            && name.len() <= MAX_NAME_LEN
            && name
                .bytes()
                .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\');
        if !ok {
            return Err(ConfigError::InvalidName {
                name: name.to_owned(),
            });
        }
        Ok(Self {
            name: name.into(),
            quota,
        })
    }

    /// The limit called `"default"`.
    pub fn default_named(quota: Quota) -> Self {
        Self {
            name: Arc::from("default"),
            quota,
        }
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The quota.
    pub fn quota(&self) -> Quota {
        self.quota
    }
}

/// A rate-limit layer that cannot be built as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A limit's name cannot be sent in a header.
    InvalidName {
        /// The rejected name.
        name: String,
    },
    /// Two limits have the same name.
    DuplicateName {
        /// The repeated name.
        name: String,
    },
    /// More limits than the store can decide at once.
    TooManyLimits {
        /// How many the store takes.
        max: usize,
    },
    /// A trusted proxy entry is neither an address nor a CIDR range.
    InvalidProxy {
        /// The rejected entry.
        proxy: String,
    },
    /// A client network prefix length out of range (1..=32 for IPv4, 1..=128 for IPv6).
    InvalidPrefix {
        /// The rejected length.
        length: u8,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidName { name } => write!(
                f,
                "limit name {name:?} must be 1 to 64 visible ASCII characters without '\"' or '\\'"
            ),
            Self::DuplicateName { name } => write!(f, "two limits are named {name:?}"),
            Self::TooManyLimits { max } => {
                write!(f, "the store decides at most {max} limits per request")
            }
            Self::InvalidProxy { proxy } => {
                write!(
                    f,
                    "trusted proxy {proxy:?} is not an IP address or CIDR range"
                )
            }
            Self::InvalidPrefix { length } => {
                write!(
                    f,
                    "a client network prefix of {length} bits is out of range"
                )
            }
        }
    }
}

impl std::error::Error for ConfigError {}
