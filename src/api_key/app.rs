//! Applications as records of their own: name, plan quota, enabled flag.

use std::time::SystemTime;

use crate::Quota;

/// An application (a partner, a service) that owns API keys: its display name, its plan's
/// quota (inherited by every key without one of its own) and whether it is enabled. A
/// disabled application's keys, including keys made later, are refused with `app_disabled`.
///
/// Keys of an application that has no record behave as an enabled one without a plan.
///
/// ```
/// use std::time::SystemTime;
/// use tollgate::Quota;
/// use tollgate::api_key::Application;
///
/// let acme = Application::new("acme", "ACME Corp", SystemTime::now())
///     .with_quota(Some(Quota::per_hour(5_000)));
/// assert!(acme.is_enabled());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Application {
    id: String,
    name: String,
    quota: Option<Quota>,
    enabled: bool,
    created_at: SystemTime,
}

impl Application {
    /// An enabled application without a plan quota.
    pub fn new(id: impl Into<String>, name: impl Into<String>, created_at: SystemTime) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            quota: None,
            enabled: true,
            created_at,
        }
    }

    /// Sets the plan's quota.
    #[must_use]
    pub fn with_quota(mut self, quota: Option<Quota>) -> Self {
        self.quota = quota;
        self
    }

    /// Sets the enabled flag.
    #[must_use]
    pub fn with_enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// Sets the display name.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The application's id (what keys name as `app_id`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The display name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The plan's quota, inherited by keys without their own.
    pub fn quota(&self) -> Option<Quota> {
        self.quota
    }

    /// Whether the application's keys work.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// When the record was made.
    pub fn created_at(&self) -> SystemTime {
        self.created_at
    }
}
