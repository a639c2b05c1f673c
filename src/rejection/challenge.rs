use http::HeaderName;

/// The authentication schemes a rejection challenges the client with (`WWW-Authenticate`).
///
/// The API-key layer challenges with `ApiKey header="<header name>"`, the JWT layer with
/// `Bearer`; a layer that accepts either sends both challenges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Challenge {
    api_key_header: Option<HeaderName>,
    bearer: bool,
}

impl Challenge {
    /// No challenge (for rejections that are not about authentication).
    pub fn none() -> Self {
        Self::default()
    }

    /// An `ApiKey` challenge naming the header the key is expected in.
    pub fn api_key(header: HeaderName) -> Self {
        Self {
            api_key_header: Some(header),
            bearer: false,
        }
    }

    /// An RFC 6750 `Bearer` challenge.
    pub fn bearer() -> Self {
        Self {
            api_key_header: None,
            bearer: true,
        }
    }

    /// Both challenges, `self`'s and `other`'s.
    #[must_use]
    pub fn and(self, other: Self) -> Self {
        Self {
            api_key_header: self.api_key_header.or(other.api_key_header),
            bearer: self.bearer || other.bearer,
        }
    }

    /// The header an `ApiKey` challenge names, if any.
    pub fn api_key_header(&self) -> Option<&HeaderName> {
        self.api_key_header.as_ref()
    }

    /// Whether a `Bearer` challenge is included.
    pub fn is_bearer(&self) -> bool {
        self.bearer
    }
}
