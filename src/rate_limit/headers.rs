//! The IETF RateLimit fields and the legacy `X-RateLimit-*` headers.
//!
//! draft-ietf-httpapi-ratelimit-headers: `RateLimit-Policy: "name";q=1000;w=3600` describes a
//! quota (`q` units per `w` seconds) and `RateLimit: "name";r=999;t=1200` its state (`r` units
//! remaining, `t` seconds until reset, rounded up).

use std::fmt::Write as _;

use http::{HeaderName, HeaderValue};

use super::Limit;
use super::store::Decision;
use crate::Quota;

static RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
static X_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
static X_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
static X_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// Which rate-limit headers a response carries besides `Retry-After` (always on a 429).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct HeaderMode {
    pub(crate) ietf: bool,
    pub(crate) legacy: bool,
}

impl HeaderMode {
    pub(crate) fn any(self) -> bool {
        self.ietf || self.legacy
    }
}

/// Whole seconds, rounded up.
fn ceil_secs(d: std::time::Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

pub(crate) fn render(
    mode: HeaderMode,
    limits: &[Limit],
    quotas: &[Quota],
    decision: &Decision,
) -> Vec<(HeaderName, HeaderValue)> {
    let mut headers = Vec::with_capacity(5);
    let statuses = decision.statuses();
    if mode.ietf {
        let mut policy = String::with_capacity(32 * quotas.len());
        let mut state = String::with_capacity(32 * quotas.len());
        for ((limit, quota), status) in limits.iter().zip(quotas).zip(statuses) {
            if !policy.is_empty() {
                policy.push_str(", ");
                state.push_str(", ");
            }
            let _ = write!(
                policy,
                "\"{}\";q={};w={}",
                limit.name(),
                quota.limit(),
                ceil_secs(quota.window())
            );
            let _ = write!(
                state,
                "\"{}\";r={};t={}",
                limit.name(),
                status.remaining(),
                ceil_secs(status.reset())
            );
        }
        // Names are validated visible ASCII, numbers are digits: always valid values.
        if let Ok(value) = HeaderValue::try_from(policy) {
            headers.push((RATELIMIT_POLICY.clone(), value));
        }
        if let Ok(value) = HeaderValue::try_from(state) {
            headers.push((RATELIMIT.clone(), value));
        }
    }
    if mode.legacy {
        // The binding limit: an exceeded one, else the one with the least left.
        let binding = statuses
            .iter()
            .copied()
            .min_by_key(|s| (!s.exceeded(), s.remaining(), std::cmp::Reverse(s.reset())));
        if let Some(status) = binding {
            headers.push((X_LIMIT.clone(), HeaderValue::from(status.limit())));
            headers.push((X_REMAINING.clone(), HeaderValue::from(status.remaining())));
            headers.push((
                X_RESET.clone(),
                HeaderValue::from(ceil_secs(status.reset())),
            ));
        }
    }
    headers
}
