//! What a token endpoint answers: [`TokenResponse`] (RFC 6749 §5.1) or [`OAuthError`]
//! (RFC 6749 §5.2).

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A successful token response (RFC 6749 §5.1, RFC 8693 §2.2.1), shaped like seed 001's:
/// `access_token`, `token_type` (`Bearer`), `expires_in` and, when one is issued,
/// `refresh_token`; `scope` and `issued_token_type` when they apply. `Debug` redacts tokens.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The access token (a JWT).
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// The new refresh token, when the flow issues one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The granted scopes, space-delimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// For token exchange: `urn:ietf:params:oauth:token-type:access_token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<String>,
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"<redacted>")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .field("scope", &self.scope)
            .finish()
    }
}

/// The `error` codes of RFC 6749 §5.2 (and `temporarily_unavailable`, for a failing store).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The request is missing a parameter or is otherwise malformed.
    InvalidRequest,
    /// Client authentication failed.
    InvalidClient,
    /// The grant (refresh token) is invalid, expired, revoked or was reused.
    InvalidGrant,
    /// The authenticated client may not use this grant (or act for this user).
    UnauthorizedClient,
    /// The grant type is not supported.
    UnsupportedGrantType,
    /// The requested scope is invalid or grants nothing.
    InvalidScope,
    /// The server cannot answer now (its store failed); retry later.
    TemporarilyUnavailable,
}

impl ErrorCode {
    /// The code as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }
}

/// An OAuth error response (RFC 6749 §5.2): `{"error": …, "error_description": …}`. The
/// description is fixed text, never a token or a store's error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthError {
    error: ErrorCode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error_description: Option<Cow<'static, str>>,
}

impl OAuthError {
    /// An error with a fixed description.
    pub fn new(error: ErrorCode, description: &'static str) -> Self {
        Self {
            error,
            error_description: Some(Cow::Borrowed(description)),
        }
    }

    /// `invalid_grant` with `description`.
    pub fn invalid_grant(description: &'static str) -> Self {
        Self::new(ErrorCode::InvalidGrant, description)
    }

    /// The error code.
    pub fn code(&self) -> ErrorCode {
        self.error
    }

    /// The description, if any.
    pub fn description(&self) -> Option<&str> {
        self.error_description.as_deref()
    }

    /// The HTTP status to answer with: 401 for `invalid_client`, 503 for
    /// `temporarily_unavailable`, 400 otherwise (RFC 6749 §5.2).
    pub fn status(&self) -> http::StatusCode {
        match self.error {
            ErrorCode::InvalidClient => http::StatusCode::UNAUTHORIZED,
            ErrorCode::TemporarilyUnavailable => http::StatusCode::SERVICE_UNAVAILABLE,
            _ => http::StatusCode::BAD_REQUEST,
        }
    }

    /// The JSON body.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self)
            .unwrap_or_else(|_| String::from(r#"{"error":"invalid_request"}"#))
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.error.as_str())?;
        if let Some(description) = &self.error_description {
            write!(f, ": {description}")?;
        }
        Ok(())
    }
}

impl std::error::Error for OAuthError {}
