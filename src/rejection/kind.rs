use http::StatusCode;

/// Why a request was turned away. Stable: [`RejectionKind::code`] is the machine-readable
/// string clients see in the `code` member of the problem+json body.
///
/// | kind | HTTP | gRPC |
/// |---|---|---|
/// | `MissingCredential`, `MalformedCredential`, `InvalidCredential`, `ExpiredCredential`, `RevokedCredential`, `InactiveCredential` | 401 | 16 `UNAUTHENTICATED` |
/// | `InvalidRequest` | 400 | 16 `UNAUTHENTICATED` |
/// | `InsufficientScope`, `Forbidden`, `AppDisabled` | 403 | 7 `PERMISSION_DENIED` |
/// | `RateLimited` | 429 | 8 `RESOURCE_EXHAUSTED` |
/// | `Unavailable` | 503 | 14 `UNAVAILABLE` |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectionKind {
    /// No credential of the required kind was sent.
    MissingCredential,
    /// The request carries credentials in a way that cannot be read: more than one, or in
    /// more than one place (RFC 6750 `invalid_request`).
    InvalidRequest,
    /// A credential was sent but is not well-formed (wrong format, failed checksum, bad encoding).
    MalformedCredential,
    /// A well-formed credential that is not valid: unknown, bad signature, wrong issuer or audience.
    InvalidCredential,
    /// The credential was valid once and has expired (or its rotation grace period ended).
    ExpiredCredential,
    /// The credential was revoked.
    RevokedCredential,
    /// The credential exists but is not active yet (an API key created inactive).
    InactiveCredential,
    /// The credential is valid, but the application it belongs to is disabled.
    AppDisabled,
    /// Authenticated, but without a scope the route requires.
    InsufficientScope,
    /// Authenticated, but a policy on the caller's claims said no.
    Forbidden,
    /// Over a rate limit.
    RateLimited,
    /// A store needed to decide (key store, shared limiter) failed or timed out; tollgate
    /// fails closed.
    Unavailable,
}

impl RejectionKind {
    /// The HTTP status of this kind.
    pub fn status(self) -> StatusCode {
        match self {
            Self::MissingCredential
            | Self::MalformedCredential
            | Self::InvalidCredential
            | Self::ExpiredCredential
            | Self::RevokedCredential
            | Self::InactiveCredential => StatusCode::UNAUTHORIZED,
            Self::InvalidRequest => StatusCode::BAD_REQUEST,
            Self::InsufficientScope | Self::Forbidden | Self::AppDisabled => StatusCode::FORBIDDEN,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The gRPC status code of this kind (`grpc-status`).
    pub fn grpc_code(self) -> u8 {
        match self {
            Self::InvalidRequest => 3, // INVALID_ARGUMENT, as HTTP 400
            Self::MissingCredential
            | Self::MalformedCredential
            | Self::InvalidCredential
            | Self::ExpiredCredential
            | Self::RevokedCredential
            | Self::InactiveCredential => 16,
            Self::InsufficientScope | Self::Forbidden | Self::AppDisabled => 7,
            Self::RateLimited => 8,
            Self::Unavailable => 14,
        }
    }

    /// The stable machine-readable code, e.g. `"expired_credential"`.
    pub fn code(self) -> &'static str {
        match self {
            Self::MissingCredential => "missing_credential",
            Self::InvalidRequest => "invalid_request",
            Self::MalformedCredential => "malformed_credential",
            Self::InvalidCredential => "invalid_credential",
            Self::ExpiredCredential => "expired_credential",
            Self::RevokedCredential => "revoked_credential",
            Self::InactiveCredential => "inactive_credential",
            Self::AppDisabled => "app_disabled",
            Self::InsufficientScope => "insufficient_scope",
            Self::Forbidden => "forbidden",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
        }
    }

    /// The RFC 6750 §3.1 `error` parameter for a `Bearer` challenge, if this kind has one.
    /// A request with no credential at all gets a challenge without an error code.
    pub(crate) fn bearer_error(self) -> Option<&'static str> {
        match self {
            Self::MissingCredential => None,
            Self::InvalidRequest => Some("invalid_request"),
            Self::InsufficientScope => Some("insufficient_scope"),
            Self::MalformedCredential
            | Self::InvalidCredential
            | Self::ExpiredCredential
            | Self::RevokedCredential
            | Self::InactiveCredential => Some("invalid_token"),
            Self::Forbidden | Self::AppDisabled | Self::RateLimited | Self::Unavailable => None,
        }
    }

    /// Whether responses of this kind carry `WWW-Authenticate` challenges (401, and 400/403
    /// under RFC 6750).
    pub(crate) fn challenges(self) -> bool {
        matches!(
            self.status(),
            StatusCode::UNAUTHORIZED | StatusCode::BAD_REQUEST | StatusCode::FORBIDDEN
        ) && !matches!(self, Self::Forbidden | Self::AppDisabled)
    }

    /// A fixed, secret-free sentence used when the rejection has no detail of its own.
    pub(crate) fn default_detail(self) -> &'static str {
        match self {
            Self::MissingCredential => "No credential was sent.",
            Self::InvalidRequest => "The request carries more than one credential.",
            Self::MalformedCredential => "The credential is not well-formed.",
            Self::InvalidCredential => "The credential is not valid.",
            Self::ExpiredCredential => "The credential has expired.",
            Self::RevokedCredential => "The credential has been revoked.",
            Self::InactiveCredential => "The credential is not active.",
            Self::AppDisabled => "The application this credential belongs to is disabled.",
            Self::InsufficientScope => "The credential lacks a required scope.",
            Self::Forbidden => "The caller is not allowed to do this.",
            Self::RateLimited => "Too many requests.",
            Self::Unavailable => "The service cannot check credentials right now.",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [RejectionKind; 12] = [
        RejectionKind::MissingCredential,
        RejectionKind::InvalidRequest,
        RejectionKind::MalformedCredential,
        RejectionKind::InvalidCredential,
        RejectionKind::ExpiredCredential,
        RejectionKind::RevokedCredential,
        RejectionKind::InactiveCredential,
        RejectionKind::AppDisabled,
        RejectionKind::InsufficientScope,
        RejectionKind::Forbidden,
        RejectionKind::RateLimited,
        RejectionKind::Unavailable,
    ];

    #[test]
    fn codes_are_unique_and_statuses_are_client_or_unavailable_errors() {
        let mut codes: Vec<_> = ALL.iter().map(|k| k.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), ALL.len());
        for kind in ALL {
            let status = kind.status();
            assert!(
                status.is_client_error() || status == StatusCode::SERVICE_UNAVAILABLE,
                "{kind:?} -> {status}"
            );
            assert_ne!(kind.grpc_code(), 0);
        }
    }
}
