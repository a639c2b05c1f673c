//! The IETF RateLimit fields and the legacy `X-RateLimit-*` headers.
//!
//! draft-ietf-httpapi-ratelimit-headers: `RateLimit-Policy: "name";q=1000;w=3600` describes a
//! quota (`q` units per `w` seconds) and `RateLimit: "name";r=999;t=1200` its state (`r` units
//! remaining, `t` seconds until reset, rounded up).

use std::collections::BTreeSet;
use std::sync::{Mutex, PoisonError};

use http::{HeaderMap, HeaderName, HeaderValue};

use super::Limit;
use super::store::Decision;
use crate::Quota;

// The field names, each built where it is used from a value made at compile time: that copies
// a few words, where cloning a `static` name calls through `Bytes`' vtable on every response.
macro_rules! names {
    ($($name:ident = $text:literal),* $(,)?) => {$(
        #[inline(always)]
        fn $name() -> HeaderName {
            const { HeaderName::from_static($text) }
        }
    )*};
}

names! {
    ratelimit_policy = "ratelimit-policy",
    ratelimit = "ratelimit",
    x_limit = "x-ratelimit-limit",
    x_remaining = "x-ratelimit-remaining",
    x_reset = "x-ratelimit-reset",
}

/// Which rate-limit headers a response carries besides `Retry-After` (always on a 429).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeaderMode {
    pub(crate) ietf: bool,
    pub(crate) legacy: bool,
}

impl Default for HeaderMode {
    /// The IETF fields on (what issue 6 and the draft ask for), the legacy ones opt-in.
    fn default() -> Self {
        Self {
            ietf: true,
            legacy: false,
        }
    }
}

impl HeaderMode {
    #[inline]
    pub(crate) fn any(self) -> bool {
        self.ietf || self.legacy
    }
}

/// Whole seconds, rounded up.
fn ceil_secs(d: std::time::Duration) -> u64 {
    d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0))
}

fn policy_value(limits: &[Limit], quotas: &[Quota]) -> Option<HeaderValue> {
    list_value(limits, b";q=", b";w=", |i| {
        let quota = quotas.get(i)?;
        Some((quota.limit(), ceil_secs(quota.window())))
    })
}

/// The `RateLimit-Policy` value of the configured limits, computed once per layer.
///
/// It is the same on every response that no key's own quota changes, so it is kept as a
/// `'static` string: cloning such a `HeaderValue` neither allocates nor touches a shared
/// reference count (which two threads would fight over). Each distinct policy text is leaked
/// once for the life of the process and reused by every layer configured alike: a handful of
/// short strings, however many layers are built.
pub(crate) fn configured_policy(limits: &[Limit]) -> Option<HeaderValue> {
    static INTERNED: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
    let quotas: Vec<Quota> = limits.iter().map(Limit::quota).collect();
    let value = policy_value(limits, &quotas)?;
    let text = value.to_str().ok()?;
    let mut interned = INTERNED.lock().unwrap_or_else(PoisonError::into_inner);
    let text = match interned.get(text) {
        Some(text) => *text,
        None => {
            let leaked: &'static str = Box::leak(text.to_owned().into_boxed_str());
            interned.insert(leaked);
            leaked
        }
    };
    Some(HeaderValue::from_static(text))
}

/// The rate-limit fields of one response: the IETF pair inline, the rarer legacy trio boxed, so
/// the response future carries 88 bytes and no allocation for the default fields.
#[derive(Default)]
pub(crate) struct Rendered {
    /// `RateLimit-Policy`, `RateLimit`.
    ietf: [Option<HeaderValue>; 2],
    /// `X-RateLimit-Limit`, `-Remaining`, `-Reset`.
    legacy: Option<Box<[Option<HeaderValue>; 3]>>,
}

impl Rendered {
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.ietf.iter().all(Option::is_none) && self.legacy.is_none()
    }

    /// The fields as (name, value) pairs.
    pub(crate) fn into_pairs(self) -> impl Iterator<Item = (HeaderName, HeaderValue)> {
        let [policy, state] = self.ietf;
        let [limit, remaining, reset] = self.legacy.map_or([None, None, None], |legacy| *legacy);
        [
            (ratelimit_policy(), policy),
            (ratelimit(), state),
            (x_limit(), limit),
            (x_remaining(), remaining),
            (x_reset(), reset),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name, value?)))
    }

    /// Adds the fields to a response an inner service made, which may carry another
    /// limiter's (a per-IP layer outside a per-key one, say).
    ///
    /// - The IETF fields are lists of named limits: this layer's members join the ones already
    ///   there, in one field line, so a client sees every limit, and a 429 from an inner
    ///   limiter keeps the state of the limit that refused it.
    /// - The legacy fields describe one limit: the one with the fewest requests remaining
    ///   keeps them, so an inner limiter's 429 (0 remaining) is never overwritten.
    pub(crate) fn apply(self, headers: &mut HeaderMap) {
        let [policy, state] = self.ietf;
        if let Some(policy) = policy {
            join_list(headers, ratelimit_policy, policy);
        }
        if let Some(state) = state {
            join_list(headers, ratelimit, state);
        }
        let Some(legacy) = self.legacy else {
            return;
        };
        let [limit, remaining, reset] = *legacy;
        let Some(remaining) = remaining else {
            return;
        };
        let theirs = headers
            .get(x_remaining())
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        let ours = remaining.to_str().ok().and_then(|v| v.parse::<u64>().ok());
        if theirs.is_some_and(|theirs| ours.is_none_or(|ours| theirs <= ours)) {
            return;
        }
        headers.insert(x_remaining(), remaining);
        for (name, value) in [(x_limit(), limit), (x_reset(), reset)] {
            match value {
                Some(value) => headers.insert(name, value),
                None => headers.remove(name),
            };
        }
    }
}

/// Adds `value`'s members to the list field `name`: appended, which sets it when the field is
/// absent (the usual case, one lookup); when it was there, every line, the existing ones and
/// ours, is joined with `", "` into one (equivalent in HTTP, and readable by clients that look at
/// the first line only).
fn join_list(headers: &mut HeaderMap, name: fn() -> HeaderName, value: HeaderValue) {
    if !headers.append(name(), value) {
        return;
    }
    let mut joined = Vec::new();
    for line in headers.get_all(name()) {
        if !joined.is_empty() {
            joined.extend_from_slice(b", ");
        }
        joined.extend_from_slice(line.as_bytes());
    }
    // Joining valid field values with ", " keeps them valid (else the lines stay apart).
    if let Ok(joined) = HeaderValue::from_bytes(&joined) {
        headers.insert(name(), joined);
    }
}

/// The fields for `decision`. `policy` is the [configured policy](configured_policy), used when
/// `quotas` are the configured ones (no key's own quota replaced the first).
pub(crate) fn render(
    mode: HeaderMode,
    limits: &[Limit],
    policy: Option<&HeaderValue>,
    quotas: &[Quota],
    decision: &Decision,
) -> Rendered {
    let mut rendered = Rendered::default();
    let statuses = decision.statuses();
    if mode.ietf {
        rendered.ietf[0] = match policy {
            Some(policy) if quotas.first() == limits.first().map(Limit::quota).as_ref() => {
                Some(policy.clone())
            }
            _ => policy_value(limits, quotas),
        };
        rendered.ietf[1] = list_value(limits, b";r=", b";t=", |i| {
            let status = statuses.get(i)?;
            Some((status.remaining(), ceil_secs(status.reset())))
        });
    }
    if mode.legacy {
        // The binding limit: an exceeded one, else the one with the least left.
        let binding = statuses
            .iter()
            .copied()
            .min_by_key(|s| (!s.exceeded(), s.remaining(), std::cmp::Reverse(s.reset())));
        if let Some(status) = binding {
            rendered.legacy = Some(Box::new([
                Some(HeaderValue::from(status.limit())),
                Some(HeaderValue::from(status.remaining())),
                Some(HeaderValue::from(ceil_secs(status.reset()))),
            ]));
        }
    }
    rendered
}

mod list;
use list::list_value;

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::rate_limit::LimitStatus;
    use crate::rate_limit::store::MAX_LIMITS;

    #[test]
    fn values_are_exact_and_the_longest_fits() {
        let long = "n".repeat(64);
        let names = ["a", "b", "c", long.as_str()];
        let limits: Vec<Limit> = names
            .iter()
            .map(|n| Limit::new(n, Quota::new(u64::MAX, Duration::MAX).unwrap()).unwrap())
            .collect();
        let quotas: Vec<Quota> = limits.iter().map(Limit::quota).collect();
        let status = LimitStatus::new(u64::MAX, u64::MAX, Duration::from_nanos(u64::MAX), false);
        let decision = Decision::new(&[status; MAX_LIMITS]);
        let mode = HeaderMode::default();
        let policy = configured_policy(&limits);
        let rendered = render(mode, &limits, policy.as_ref(), &quotas, &decision);
        let pairs: Vec<_> = rendered.into_pairs().collect();
        assert_eq!(pairs.len(), 2);
        let max = u64::MAX;
        let secs = u64::MAX; // saturated
        assert!(
            pairs[0]
                .1
                .to_str()
                .unwrap()
                .starts_with(&format!("\"a\";q={max};w={secs}, \"b\";q={max};w={secs}"))
        );
        assert!(
            pairs[1]
                .1
                .to_str()
                .unwrap()
                .ends_with(&format!("\"{long}\";r={max};t=18446744074"))
        );

        let one = [Limit::default_named(Quota::per_hour(1000))];
        let status = LimitStatus::new(1000, 0, Duration::from_millis(1_199_001), false);
        let decision = Decision::new(&[status]);
        let policy = configured_policy(&one);
        let q = [one[0].quota()];
        let pairs: Vec<_> = render(mode, &one, policy.as_ref(), &q, &decision)
            .into_pairs()
            .collect();
        assert_eq!(pairs[0].1, "\"default\";q=1000;w=3600");
        assert_eq!(pairs[1].1, "\"default\";r=0;t=1200");
        // A key's own quota replaces the configured policy.
        let own = [Quota::per_minute(7)];
        let pairs: Vec<_> = render(mode, &one, policy.as_ref(), &own, &decision)
            .into_pairs()
            .collect();
        assert_eq!(pairs[0].1, "\"default\";q=7;w=60");
    }

    /// One layer's fields, as `render` makes them.
    fn fields(mode: HeaderMode, name: &str, limit: u64, remaining: u64) -> Rendered {
        let limits = [Limit::new(name, Quota::per_hour(limit)).unwrap()];
        let status = LimitStatus::new(limit, remaining, Duration::from_secs(60), remaining == 0);
        let quotas = [limits[0].quota()];
        render(mode, &limits, None, &quotas, &Decision::new(&[status]))
    }

    #[test]
    fn stacked_limiters_list_every_limit_and_the_tightest_keeps_the_legacy_fields() {
        let both = HeaderMode {
            ietf: true,
            legacy: true,
        };
        // An inner per-key limiter refused (0 left); the outer per-IP one admitted (5 left).
        let mut headers = HeaderMap::new();
        fields(both, "per-key", 2, 0).apply(&mut headers);
        fields(both, "per-ip", 6, 5).apply(&mut headers);
        assert_eq!(
            headers[&ratelimit_policy()],
            "\"per-key\";q=2;w=3600, \"per-ip\";q=6;w=3600"
        );
        assert_eq!(
            headers[&ratelimit()],
            "\"per-key\";r=0;t=60, \"per-ip\";r=5;t=60"
        );
        assert_eq!(headers.get_all(ratelimit()).iter().count(), 1, "one line");
        assert_eq!(headers[&x_limit()], "2");
        assert_eq!(headers[&x_remaining()], "0");
        // The other way round: the outer limiter has fewer left, so it takes the legacy fields.
        let mut headers = HeaderMap::new();
        fields(both, "per-key", 100, 40).apply(&mut headers);
        fields(both, "per-ip", 6, 3).apply(&mut headers);
        assert_eq!(headers[&x_limit()], "6");
        assert_eq!(headers[&x_remaining()], "3");
        // Alone, a layer's fields are set as rendered.
        let mut headers = HeaderMap::new();
        fields(HeaderMode::default(), "default", 10, 9).apply(&mut headers);
        assert_eq!(headers[&ratelimit()], "\"default\";r=9;t=60");
        assert!(headers.get(x_remaining()).is_none());
    }
}
