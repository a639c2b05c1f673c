use std::collections::BTreeMap;
use std::fmt;
use std::time::SystemTime;

use std::sync::Arc;

use super::app::Application;
use super::format::KeyDigest;
use crate::Quota;
use crate::identity::{AppIdentity, KeySlot};
use crate::usage::{KeyUsage, UsageCounter};

/// What a store keeps about one API key: everything but the key itself.
///
/// Seed 000's `ApiKey` model (application name and id, allowed scopes, expiry, active flag),
/// plus the digest the key is looked up by, its slot, a per-key quota and metadata.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    id: String,
    app_id: String,
    app_name: String,
    digest: KeyDigest,
    hint: String,
    scopes: Vec<String>,
    slot: KeySlot,
    created_at: SystemTime,
    expires_at: Option<SystemTime>,
    active: bool,
    quota: Option<Quota>,
    metadata: BTreeMap<String, String>,
    revoked_at: Option<SystemTime>,
    usage: KeyUsage,
    application: Option<Application>,
}

/// Where a key stands, apart from its expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyStatus {
    Active,
    /// Created inactive, not activated yet.
    Inactive,
    Revoked,
    /// Its application is disabled.
    AppDisabled,
}

impl ApiKeyRecord {
    /// A record for key `id` of application `app_id`, stored under `digest`. `hint` is the
    /// masked key shown in listings (see `ApiKey::masked`). Active, primary, no scopes, no
    /// expiry until set.
    pub fn new(
        id: impl Into<String>,
        app_id: impl Into<String>,
        digest: KeyDigest,
        hint: impl Into<String>,
        created_at: SystemTime,
    ) -> Self {
        Self {
            id: id.into(),
            app_id: app_id.into(),
            app_name: String::new(),
            digest,
            hint: hint.into(),
            scopes: Vec::new(),
            slot: KeySlot::Primary,
            created_at,
            expires_at: None,
            active: true,
            quota: None,
            metadata: BTreeMap::new(),
            revoked_at: None,
            usage: KeyUsage::default(),
            application: None,
        }
    }

    /// Sets the application's display name.
    #[must_use]
    pub fn with_app_name(mut self, name: impl Into<String>) -> Self {
        self.app_name = name.into();
        self
    }

    /// Sets the scopes the key grants.
    #[must_use]
    pub fn with_scopes<I, T>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        crate::identity::normalize_scopes(&mut self.scopes);
        self
    }

    /// Sets the slot.
    #[must_use]
    pub fn with_slot(mut self, slot: KeySlot) -> Self {
        self.slot = slot;
        self
    }

    /// Sets the expiry.
    #[must_use]
    pub fn with_expires_at(mut self, at: Option<SystemTime>) -> Self {
        self.expires_at = at;
        self
    }

    /// Sets the active flag.
    #[must_use]
    pub fn with_active(mut self, active: bool) -> Self {
        self.active = active;
        self
    }

    /// Sets the key's own quota.
    #[must_use]
    pub fn with_quota(mut self, quota: Option<Quota>) -> Self {
        self.quota = quota;
        self
    }

    /// Sets the metadata.
    #[must_use]
    pub fn with_metadata(mut self, metadata: BTreeMap<String, String>) -> Self {
        self.metadata = metadata;
        self
    }

    /// Sets when the key was revoked (a revoked key is inactive for good).
    #[must_use]
    pub fn with_revoked_at(mut self, at: Option<SystemTime>) -> Self {
        self.revoked_at = at;
        if at.is_some() {
            self.active = false;
        }
        self
    }

    /// Sets the usage totals the store holds.
    #[must_use]
    pub fn with_usage(mut self, usage: KeyUsage) -> Self {
        self.usage = usage;
        self
    }

    /// Sets the application record the store joined to the key (stores set it on reads).
    #[must_use]
    pub fn with_application(mut self, application: Option<Application>) -> Self {
        self.application = application;
        self
    }

    /// When the key was revoked, if it was.
    pub fn revoked_at(&self) -> Option<SystemTime> {
        self.revoked_at
    }

    /// Whether the key was revoked (rather than created inactive).
    pub fn is_revoked(&self) -> bool {
        self.revoked_at.is_some()
    }

    /// Usage totals and last use, as the store last held them (flushed in batches).
    pub fn usage(&self) -> &KeyUsage {
        &self.usage
    }

    /// The key's application record, when the store has one.
    pub fn application(&self) -> Option<&Application> {
        self.application.as_ref()
    }

    /// The quota the key is limited by: its own, else its application's plan.
    pub fn effective_quota(&self) -> Option<Quota> {
        self.quota
            .or_else(|| self.application.as_ref().and_then(Application::quota))
    }

    pub(crate) fn status(&self) -> KeyStatus {
        if self.revoked_at.is_some() {
            KeyStatus::Revoked
        } else if !self.active {
            KeyStatus::Inactive
        } else if self
            .application
            .as_ref()
            .is_some_and(|app| !app.is_enabled())
        {
            KeyStatus::AppDisabled
        } else {
            KeyStatus::Active
        }
    }

    /// The key's id (public, safe to log).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The application's id.
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// The application's display name.
    pub fn app_name(&self) -> &str {
        &self.app_name
    }

    /// The SHA-256 digest of the key.
    pub fn digest(&self) -> &KeyDigest {
        &self.digest
    }

    /// The masked key, e.g. `tg_…a1B2`.
    pub fn hint(&self) -> &str {
        &self.hint
    }

    /// The granted scopes, sorted.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// The slot.
    pub fn slot(&self) -> KeySlot {
        self.slot
    }

    /// When the key was made.
    pub fn created_at(&self) -> SystemTime {
        self.created_at
    }

    /// When the key stops working, if ever.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.expires_at
    }

    /// Whether the key is active: neither revoked nor created inactive and not yet
    /// activated.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// The key's own quota.
    pub fn quota(&self) -> Option<Quota> {
        self.quota
    }

    /// Free-form metadata.
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// Whether the key authenticates at `now`: active and not expired.
    pub fn is_usable_at(&self, now: SystemTime) -> bool {
        self.active && !self.is_expired_at(now)
    }

    /// Whether the key's expiry has passed at `now`.
    pub fn is_expired_at(&self, now: SystemTime) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// The identity this key gives its caller (its quota: the key's own, else its
    /// application's plan).
    pub fn identity(&self) -> AppIdentity {
        self.identity_counting(None)
    }

    pub(crate) fn identity_counting(&self, usage: Option<Arc<UsageCounter>>) -> AppIdentity {
        AppIdentity::builder(self.id.clone(), self.app_id.clone())
            .app_name(self.app_name.clone())
            .scopes(self.scopes.iter().cloned())
            .slot(self.slot)
            .quota(self.effective_quota())
            .expires_at(self.expires_at)
            .metadata(self.metadata.clone())
            .usage(usage)
            .build()
    }

    pub(crate) fn set_revoked_at(&mut self, at: SystemTime) {
        self.revoked_at = Some(at);
        self.active = false;
    }

    pub(crate) fn add_usage(&mut self, delta: &crate::usage::UsageDelta) {
        self.usage.counts = self.usage.counts.plus(delta.counts);
        self.usage.last_used_at = self.usage.last_used_at.max(delta.last_used_at);
    }

    pub(crate) fn set_expires_at(&mut self, at: Option<SystemTime>) {
        self.expires_at = at;
    }

    pub(crate) fn set_active(&mut self, active: bool) {
        self.active = active;
    }
}

impl fmt::Debug for ApiKeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyRecord")
            .field("id", &self.id)
            .field("app_id", &self.app_id)
            .field("app_name", &self.app_name)
            .field("hint", &self.hint)
            .field("scopes", &self.scopes)
            .field("slot", &self.slot)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("active", &self.active)
            .field("revoked_at", &self.revoked_at)
            .field("quota", &self.quota)
            .field("usage", &self.usage)
            .finish_non_exhaustive()
    }
}

/// What to make a new key for: the application, slot, scopes and limits.
///
/// ```
/// use tollgate::api_key::NewKey;
/// use tollgate::identity::KeySlot;
///
/// let spec = NewKey::new("app-42", "Billing worker")
///     .slot(KeySlot::Secondary)
///     .scopes(["orders:read", "orders:write"]);
/// # let _ = spec;
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct NewKey {
    pub(crate) app_id: String,
    pub(crate) app_name: String,
    pub(crate) slot: KeySlot,
    pub(crate) scopes: Vec<String>,
    pub(crate) expires_at: Option<SystemTime>,
    pub(crate) quota: Option<Quota>,
    pub(crate) metadata: BTreeMap<String, String>,
    pub(crate) active: bool,
}

impl NewKey {
    /// A primary key for `app_id`, displayed as `app_name`.
    pub fn new(app_id: impl Into<String>, app_name: impl Into<String>) -> Self {
        Self {
            app_id: app_id.into(),
            app_name: app_name.into(),
            slot: KeySlot::Primary,
            scopes: Vec::new(),
            expires_at: None,
            quota: None,
            metadata: BTreeMap::new(),
            active: true,
        }
    }

    /// Creates the key inactive: stored, but refused (`inactive_credential`) until
    /// [`ApiKeys::activate`](super::ApiKeys::activate).
    pub fn inactive(mut self) -> Self {
        self.active = false;
        self
    }

    /// Sets the slot (default primary).
    pub fn slot(mut self, slot: KeySlot) -> Self {
        self.slot = slot;
        self
    }

    /// Sets the granted scopes.
    pub fn scopes<I, T>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Sets an expiry (default none).
    pub fn expires_at(mut self, at: SystemTime) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// Sets the key's own rate-limit quota.
    pub fn quota(mut self, quota: Quota) -> Self {
        self.quota = Some(quota);
        self
    }

    /// Adds a metadata entry.
    pub fn metadata(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(name.into(), value.into());
        self
    }

    pub(crate) fn into_record(
        self,
        id: String,
        digest: KeyDigest,
        hint: String,
        now: SystemTime,
    ) -> ApiKeyRecord {
        ApiKeyRecord::new(id, self.app_id, digest, hint, now)
            .with_app_name(self.app_name)
            .with_scopes(self.scopes)
            .with_slot(self.slot)
            .with_expires_at(self.expires_at)
            .with_quota(self.quota)
            .with_metadata(self.metadata)
            .with_active(self.active)
    }
}
