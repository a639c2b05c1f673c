//! What the store keeps per refresh token.

use std::fmt;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::token::{FamilyId, TokenDigest};

/// Where a refresh token is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RefreshState {
    /// The family's newest token: the one a refresh is expected with.
    Active,
    /// Used once and replaced by `successor`.
    Rotated {
        /// When it was used.
        at: SystemTime,
        /// The token that replaced it.
        successor: TokenDigest,
        /// Whether its one re-use within the grace window has been spent.
        grace_used: bool,
    },
    /// Its family was revoked (logout, or a detected reuse).
    Revoked,
}

/// One refresh token as stored: its digest (never the token), family, subject, scopes,
/// expiry and state, plus the id and expiry of the access token minted with it (so a revoked
/// family's access tokens can be denylisted) and the seed its successor is derived from.
///
/// It is `Serialize`/`Deserialize` so that a store can keep it as one document next to the
/// columns it indexes (digest, family). `Debug` leaves out the seed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshRecord {
    pub(crate) digest: TokenDigest,
    pub(crate) family: FamilyId,
    pub(crate) subject: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) created_at: SystemTime,
    pub(crate) expires_at: SystemTime,
    pub(crate) state: RefreshState,
    pub(crate) seed: [u8; 32],
    pub(crate) access_jti: String,
    pub(crate) access_expires_at: SystemTime,
    /// Custom claims every access token of the session carries (absent in records written
    /// before they existed).
    #[serde(default)]
    pub(crate) claims: Map<String, Value>,
}

impl RefreshRecord {
    /// The token's digest, the store's key.
    pub fn digest(&self) -> &TokenDigest {
        &self.digest
    }

    /// The family (login session) it belongs to.
    pub fn family(&self) -> &FamilyId {
        &self.family
    }

    /// The user it was issued to.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The scopes it grants, sorted.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// When it was issued.
    pub fn created_at(&self) -> SystemTime {
        self.created_at
    }

    /// When it stops working.
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }

    /// Its state.
    pub fn state(&self) -> RefreshState {
        self.state
    }

    /// Sets its state (for stores that apply a transition themselves).
    pub fn set_state(&mut self, state: RefreshState) {
        self.state = state;
    }

    /// The `jti` of the access token minted together with it.
    pub fn access_jti(&self) -> &str {
        &self.access_jti
    }

    /// When that access token expires.
    pub fn access_expires_at(&self) -> SystemTime {
        self.access_expires_at
    }

    /// The custom claims every access token minted for its session carries
    /// ([`TokenService::issue_grant`](crate::issuer::TokenService::issue_grant)).
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// Whether it is active and unexpired at `now`.
    pub fn is_usable(&self, now: SystemTime) -> bool {
        self.state == RefreshState::Active && self.expires_at > now
    }
}

impl fmt::Debug for RefreshRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshRecord")
            .field("digest", &self.digest)
            .field("family", &self.family)
            .field("subject", &self.subject)
            .field("scopes", &self.scopes)
            .field("expires_at", &self.expires_at)
            .field("state", &self.state)
            .field("access_jti", &self.access_jti)
            .finish_non_exhaustive()
    }
}
