//! The IETF RateLimit fields and the legacy `X-RateLimit-*` headers.
//!
//! draft-ietf-httpapi-ratelimit-headers: `RateLimit-Policy: "name";q=1000;w=3600` describes a
//! quota (`q` units per `w` seconds) and `RateLimit: "name";r=999;t=1200` its state (`r` units
//! remaining, `t` seconds until reset, rounded up).

use std::collections::BTreeSet;
use std::sync::{Mutex, PoisonError};

use http::header::Entry;
use http::{HeaderMap, HeaderName, HeaderValue};

use super::Limit;
use super::store::{Decision, MAX_LIMITS};
use crate::Quota;

static RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
static X_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
static X_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
static X_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

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

/// The longest field value: [`MAX_LIMITS`] items of a quoted name (at most 64 bytes), two
/// parameters with 20-digit numbers, and the separators.
const VALUE_CAP: usize = MAX_LIMITS * (2 + 64 + 2 * (3 + 20) + 2);

/// A field value written on the stack, numbers in place: no `format!`, no intermediate
/// copies, one allocation (the `HeaderValue`'s, of exactly its length).
struct ValueBuf {
    bytes: [u8; VALUE_CAP],
    len: usize,
}

impl ValueBuf {
    fn new() -> Self {
        Self {
            bytes: [0; VALUE_CAP],
            len: 0,
        }
    }

    #[inline]
    fn push(&mut self, s: &[u8]) {
        // Never out of room: `VALUE_CAP` is sized for the longest value (validated names).
        let end = self.len + s.len();
        self.bytes[self.len..end].copy_from_slice(s);
        self.len = end;
    }

    /// `n` in decimal, written in place two digits at a time.
    #[inline]
    fn push_u64(&mut self, mut n: u64) {
        const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
            2021222324252627282930313233343536373839\
            4041424344454647484950515253545556575859\
            6061626364656667686970717273747576777879\
            8081828384858687888990919293949596979899";
        let digits = n.checked_ilog10().unwrap_or(0) as usize + 1;
        let end = self.len + digits;
        let out = &mut self.bytes[self.len..end];
        let mut at = digits;
        while n >= 100 {
            let pair = (n % 100) as usize * 2;
            n /= 100;
            at -= 2;
            out[at] = PAIRS[pair];
            out[at + 1] = PAIRS[pair + 1];
        }
        if n >= 10 {
            let pair = n as usize * 2;
            out[at - 2] = PAIRS[pair];
            out[at - 1] = PAIRS[pair + 1];
        } else {
            out[at - 1] = b'0' + n as u8;
        }
        self.len = end;
    }

    /// `"name";a=x;b=y`, after a `, ` unless first.
    #[inline]
    fn item(&mut self, name: &str, a: &[u8; 3], x: u64, b: &[u8; 3], y: u64) {
        if self.len > 0 {
            self.push(b", ");
        }
        self.push(b"\"");
        self.push(name.as_bytes());
        self.push(b"\"");
        self.push(a);
        self.push_u64(x);
        self.push(b);
        self.push_u64(y);
    }

    fn value(&self) -> Option<HeaderValue> {
        // Names are validated visible ASCII, numbers are digits: always a valid value.
        HeaderValue::from_bytes(&self.bytes[..self.len]).ok()
    }
}

fn policy_value(limits: &[Limit], quotas: &[Quota]) -> Option<HeaderValue> {
    let mut buf = ValueBuf::new();
    for (limit, quota) in limits.iter().zip(quotas) {
        buf.item(
            limit.name(),
            b";q=",
            quota.limit(),
            b";w=",
            ceil_secs(quota.window()),
        );
    }
    buf.value()
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
            (&RATELIMIT_POLICY, policy),
            (&RATELIMIT, state),
            (&X_LIMIT, limit),
            (&X_REMAINING, remaining),
            (&X_RESET, reset),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name.clone(), value?)))
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
        for (name, value) in [(&RATELIMIT_POLICY, policy), (&RATELIMIT, state)] {
            if let Some(value) = value {
                join_list(headers, name, value);
            }
        }
        let Some(legacy) = self.legacy else {
            return;
        };
        let [limit, remaining, reset] = *legacy;
        let Some(remaining) = remaining else {
            return;
        };
        let theirs = headers
            .get(&X_REMAINING)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        let ours = remaining.to_str().ok().and_then(|v| v.parse::<u64>().ok());
        if theirs.is_some_and(|theirs| ours.is_none_or(|ours| theirs <= ours)) {
            return;
        }
        headers.insert(&X_REMAINING, remaining);
        for (name, value) in [(&X_LIMIT, limit), (&X_RESET, reset)] {
            match value {
                Some(value) => headers.insert(name, value),
                None => headers.remove(name),
            };
        }
    }
}

/// Adds `value`'s members to the list field `name`: set as is when the field is absent (the
/// usual case), else joined after the existing lines with `", "` into one line (equivalent in
/// HTTP, and readable by clients that look at the first line only).
fn join_list(headers: &mut HeaderMap, name: &HeaderName, value: HeaderValue) {
    let mut existing = match headers.entry(name) {
        Entry::Vacant(vacant) => {
            vacant.insert(value);
            return;
        }
        Entry::Occupied(existing) => existing,
    };
    let mut joined = Vec::new();
    for line in existing.iter().chain([&value]) {
        if !joined.is_empty() {
            joined.extend_from_slice(b", ");
        }
        joined.extend_from_slice(line.as_bytes());
    }
    // Joining valid field values with ", " keeps them valid; keep the existing field if not.
    if let Ok(joined) = HeaderValue::from_bytes(&joined) {
        existing.insert(joined);
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
        let mut state = ValueBuf::new();
        for (limit, status) in limits.iter().zip(statuses) {
            state.item(
                limit.name(),
                b";r=",
                status.remaining(),
                b";t=",
                ceil_secs(status.reset()),
            );
        }
        rendered.ietf[1] = state.value();
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

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::rate_limit::LimitStatus;

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
            headers[&RATELIMIT_POLICY],
            "\"per-key\";q=2;w=3600, \"per-ip\";q=6;w=3600"
        );
        assert_eq!(
            headers[&RATELIMIT],
            "\"per-key\";r=0;t=60, \"per-ip\";r=5;t=60"
        );
        assert_eq!(headers.get_all(&RATELIMIT).iter().count(), 1, "one line");
        assert_eq!(headers[&X_LIMIT], "2");
        assert_eq!(headers[&X_REMAINING], "0");
        // The other way round: the outer limiter has fewer left, so it takes the legacy fields.
        let mut headers = HeaderMap::new();
        fields(both, "per-key", 100, 40).apply(&mut headers);
        fields(both, "per-ip", 6, 3).apply(&mut headers);
        assert_eq!(headers[&X_LIMIT], "6");
        assert_eq!(headers[&X_REMAINING], "3");
        // Alone, a layer's fields are set as rendered.
        let mut headers = HeaderMap::new();
        fields(HeaderMode::default(), "default", 10, 9).apply(&mut headers);
        assert_eq!(headers[&RATELIMIT], "\"default\";r=9;t=60");
        assert!(headers.get(&X_REMAINING).is_none());
    }
}
