use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use crate::Quota;
use crate::usage::UsageCounter;

/// Which of an application's two key slots a key occupies (seed 001: primary and secondary
/// keys, so one can be rotated while the other keeps working).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeySlot {
    /// The primary key.
    Primary,
    /// The secondary (backup) key.
    Secondary,
}

impl KeySlot {
    /// `"primary"` or `"secondary"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Primary => "primary",
            Self::Secondary => "secondary",
        }
    }
}

impl std::str::FromStr for KeySlot {
    type Err = UnknownKeySlot;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "primary" => Ok(Self::Primary),
            "secondary" => Ok(Self::Secondary),
            _ => Err(UnknownKeySlot),
        }
    }
}

/// A key slot name that is neither `primary` nor `secondary`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownKeySlot;

impl fmt::Display for UnknownKeySlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("key slot must be \"primary\" or \"secondary\"")
    }
}

impl std::error::Error for UnknownKeySlot {}

/// The application an API key belongs to, as the API-key layer hands it downstream.
///
/// It never holds the key or its digest. Cloning is cheap (one `Arc`).
#[derive(Clone)]
pub struct AppIdentity(Arc<Inner>);

// `repr(C)`, the fields a per-key rate limit reads on every request first: `key_id` and `quota`
// then sit right after the `Arc`'s counts, on the cache line the identity's clone has just
// touched (or on the next one), instead of two lines further into the allocation.
#[repr(C)]
#[derive(Clone)]
struct Inner {
    key_id: String,
    quota: Option<Quota>,
    /// The key's live usage counters, when its `ApiKeys` tracks usage (read on every request
    /// then: next to the fields above).
    usage: Option<Arc<UsageCounter>>,
    app_id: String,
    app_name: String,
    scopes: Vec<String>,
    expires_at: Option<SystemTime>,
    metadata: BTreeMap<String, String>,
    slot: KeySlot,
}

impl AppIdentity {
    /// The same identity in an allocation of its own (its usage counters still shared):
    /// for a per-thread cache, whose clones then count references on memory no other
    /// thread writes.
    #[cfg(feature = "api-key")]
    pub(crate) fn private_copy(&self) -> Self {
        Self(Arc::new((*self.0).clone()))
    }

    /// Starts an identity for key `key_id` of application `app_id`.
    pub fn builder(key_id: impl Into<String>, app_id: impl Into<String>) -> AppIdentityBuilder {
        AppIdentityBuilder(Inner {
            key_id: key_id.into(),
            app_id: app_id.into(),
            app_name: String::new(),
            scopes: Vec::new(),
            slot: KeySlot::Primary,
            quota: None,
            expires_at: None,
            metadata: BTreeMap::new(),
            usage: None,
        })
    }

    /// The id of the key used (not the key).
    pub fn key_id(&self) -> &str {
        &self.0.key_id
    }

    /// The application's id.
    pub fn app_id(&self) -> &str {
        &self.0.app_id
    }

    /// The application's display name.
    pub fn app_name(&self) -> &str {
        &self.0.app_name
    }

    /// The scopes the key grants, sorted and without duplicates.
    pub fn scopes(&self) -> &[String] {
        &self.0.scopes
    }

    /// Whether the key grants `scope` (exact, case-sensitive match).
    #[inline]
    pub fn has_scope(&self, scope: &str) -> bool {
        super::contains_scope(&self.0.scopes, scope)
    }

    /// The key's slot.
    pub fn slot(&self) -> KeySlot {
        self.0.slot
    }

    /// The key's own rate-limit quota (plan tier), if it has one.
    pub fn quota(&self) -> Option<Quota> {
        self.0.quota
    }

    /// When the key stops working, if ever.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.0.expires_at
    }

    /// Free-form metadata stored with the key.
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.0.metadata
    }

    /// The key's live usage counters, when its `ApiKeys` tracks usage: a rate limiter counts
    /// the requests it refuses here.
    pub fn usage(&self) -> Option<&UsageCounter> {
        self.0.usage.as_deref()
    }
}

impl fmt::Debug for AppIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppIdentity")
            .field("key_id", &self.0.key_id)
            .field("app_id", &self.0.app_id)
            .field("app_name", &self.0.app_name)
            .field("scopes", &self.0.scopes)
            .field("slot", &self.0.slot)
            .finish_non_exhaustive()
    }
}

impl crate::auth::Identity for AppIdentity {
    fn insert_into(self, extensions: &mut http::Extensions) {
        extensions.insert(self);
    }

    fn app_id(&self) -> Option<&str> {
        Some(AppIdentity::app_id(self))
    }

    fn key_id(&self) -> Option<&str> {
        Some(AppIdentity::key_id(self))
    }
}

/// Builds an [`AppIdentity`]; see [`AppIdentity::builder`].
#[must_use]
pub struct AppIdentityBuilder(Inner);

impl AppIdentityBuilder {
    /// Sets the application's display name.
    pub fn app_name(mut self, name: impl Into<String>) -> Self {
        self.0.app_name = name.into();
        self
    }

    /// Sets the granted scopes.
    pub fn scopes<I, T>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.0.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the key slot.
    pub fn slot(mut self, slot: KeySlot) -> Self {
        self.0.slot = slot;
        self
    }

    /// Sets the key's own quota.
    pub fn quota(mut self, quota: Option<Quota>) -> Self {
        self.0.quota = quota;
        self
    }

    /// Sets the expiry.
    pub fn expires_at(mut self, at: Option<SystemTime>) -> Self {
        self.0.expires_at = at;
        self
    }

    /// Sets the metadata.
    pub fn metadata(mut self, metadata: BTreeMap<String, String>) -> Self {
        self.0.metadata = metadata;
        self
    }

    /// Attaches the key's live usage counters.
    #[cfg_attr(not(feature = "api-key"), allow(dead_code))]
    pub(crate) fn usage(mut self, usage: Option<Arc<UsageCounter>>) -> Self {
        self.0.usage = usage;
        self
    }

    /// Finishes the identity.
    pub fn build(mut self) -> AppIdentity {
        super::normalize_scopes(&mut self.0.scopes);
        AppIdentity(Arc::new(self.0))
    }
}

impl fmt::Debug for AppIdentityBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppIdentityBuilder")
            .field("key_id", &self.0.key_id)
            .finish_non_exhaustive()
    }
}
