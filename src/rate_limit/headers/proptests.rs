//! Generated limits, quotas and decisions through the header rendering: the `RateLimit-Policy`
//! and `RateLimit` fields (draft-ietf-httpapi-ratelimit-headers) and the legacy fields always
//! parse back to the numbers rendered, and stacked layers keep every limit.

use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::proptests::config;
use crate::rate_limit::LimitStatus;
use crate::rate_limit::store::MAX_LIMITS;

/// A valid limit name: 1-64 bytes of visible ASCII or space, without `"` and `\`.
fn name() -> impl Strategy<Value = String> {
    prop_oneof!["[ !#-\\[\\]-~]{1,64}", "[a-z]{1,8}", "[ ,;=a]{1,6}"]
}

fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        (any::<u64>(), 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
        (0u64..10_000, 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
        Just(Duration::MAX),
    ]
}

fn quota() -> impl Strategy<Value = Quota> {
    (prop_oneof![1u64..10_000, 1u64..=u64::MAX], duration())
        .prop_filter_map("a zero window", |(limit, window)| Quota::new(limit, window))
}

fn status() -> impl Strategy<Value = LimitStatus> {
    (any::<u64>(), any::<u64>(), duration(), any::<bool>())
        .prop_map(|(l, r, reset, exceeded)| LimitStatus::new(l, r, reset, exceeded))
}

/// 1 to `MAX_LIMITS` limits with distinct names, their statuses, and per-key quotas.
fn setup() -> impl Strategy<Value = (Vec<Limit>, Vec<Quota>, Vec<LimitStatus>)> {
    proptest::collection::vec((name(), quota(), quota(), status()), 1..=MAX_LIMITS).prop_map(
        |items| {
            let mut seen = BTreeSet::new();
            let items: Vec<_> = items
                .into_iter()
                .filter(|(name, ..)| seen.insert(name.clone()))
                .collect();
            let limits = items
                .iter()
                .map(|(n, q, ..)| Limit::new(n, *q).unwrap())
                .collect();
            let own = items.iter().map(|(_, _, q, _)| *q).collect();
            let statuses = items.iter().map(|(.., s)| *s).collect();
            (limits, own, statuses)
        },
    )
}

/// Parses a list of `"name";a=1;b=2` items (names hold no `"` or `\`, so no escapes).
fn parse_list(value: &str) -> Option<Vec<(String, Vec<(String, u64)>)>> {
    let mut items = Vec::new();
    let mut rest = value;
    loop {
        rest = rest.strip_prefix('"')?;
        let end = rest.find('"')?;
        let name = rest[..end].to_owned();
        rest = &rest[end + 1..];
        let mut params = Vec::new();
        while let Some(after) = rest.strip_prefix(';') {
            let eq = after.find('=')?;
            let digits = after[eq + 1..]
                .bytes()
                .take_while(u8::is_ascii_digit)
                .count();
            let number = after[eq + 1..eq + 1 + digits].parse().ok()?;
            params.push((after[..eq].to_owned(), number));
            rest = &after[eq + 1 + digits..];
        }
        items.push((name, params));
        if rest.is_empty() {
            return Some(items);
        }
        rest = rest.strip_prefix(", ")?;
    }
}

fn item(name: &str, a: &str, x: u64, b: &str, y: u64) -> (String, Vec<(String, u64)>) {
    (name.to_owned(), vec![(a.to_owned(), x), (b.to_owned(), y)])
}

proptest! {
    #![proptest_config(config())]

    /// `Limit::new` takes exactly the names that can be sent as a structured-field string.
    #[test]
    fn limit_names_are_the_sendable_ones(name in prop_oneof![".{0,70}", "[ -~]{0,70}"]) {
        let sendable = (1..=64).contains(&name.len())
            && name.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\');
        prop_assert_eq!(Limit::new(&name, Quota::per_second(1)).is_ok(), sendable);
    }

    /// Every field rendered for any limits, quotas and decision parses back to the names and
    /// numbers it was made from (windows and resets in seconds, rounded up).
    #[test]
    fn rendered_fields_parse_back(
        (limits, own, statuses) in setup(),
        ietf in any::<bool>(),
        legacy in any::<bool>(),
        configured in any::<bool>(),
        cached_policy in any::<bool>(),
    ) {
        let mode = HeaderMode { ietf, legacy };
        let quotas: Vec<Quota> = if configured {
            limits.iter().map(Limit::quota).collect()
        } else {
            own
        };
        let policy = if cached_policy { configured_policy(&limits) } else { None };
        let decision = Decision::new(&statuses);
        let rendered = render(mode, &limits, policy.as_ref(), &quotas, &decision);
        let mut headers = HeaderMap::new();
        rendered.apply(&mut headers);

        let field = |name: &HeaderName| headers.get(name).map(|v| v.to_str().unwrap().to_owned());
        if ietf {
            let expected: Vec<_> = limits
                .iter()
                .zip(&quotas)
                .map(|(l, q)| item(l.name(), "q", q.limit(), "w", ceil_secs(q.window())))
                .collect();
            prop_assert_eq!(parse_list(&field(&ratelimit_policy()).unwrap()), Some(expected));
            let expected: Vec<_> = limits
                .iter()
                .zip(&statuses)
                .map(|(l, s)| item(l.name(), "r", s.remaining(), "t", ceil_secs(s.reset())))
                .collect();
            prop_assert_eq!(parse_list(&field(&ratelimit()).unwrap()), Some(expected));
        } else {
            prop_assert!(field(&ratelimit_policy()).is_none() && field(&ratelimit()).is_none());
        }
        if legacy {
            let remaining: u64 = field(&x_remaining()).unwrap().parse().unwrap();
            let limit: u64 = field(&x_limit()).unwrap().parse().unwrap();
            let reset: u64 = field(&x_reset()).unwrap().parse().unwrap();
            // The binding status: an exceeded one first, then the fewest remaining.
            let binding = statuses
                .iter()
                .find(|s| s.remaining() == remaining && s.limit() == limit && ceil_secs(s.reset()) == reset);
            prop_assert!(binding.is_some(), "not one of the statuses");
            let binding = binding.unwrap();
            if statuses.iter().any(LimitStatus::exceeded) {
                prop_assert!(statuses.iter().filter(|s| s.exceeded()).all(|s| s.remaining() >= remaining));
            } else {
                prop_assert!(statuses.iter().all(|s| s.remaining() >= binding.remaining()));
            }
        } else {
            prop_assert!(field(&x_remaining()).is_none());
        }
    }

    /// Two stacked layers: the IETF fields list both layers' limits in one line, the legacy
    /// fields show the fewer remaining.
    #[test]
    fn stacked_layers_keep_every_limit(
        (inner_limits, _, inner_statuses) in setup(),
        (outer_limits, _, outer_statuses) in setup(),
    ) {
        let both = HeaderMode { ietf: true, legacy: true };
        let mut headers = HeaderMap::new();
        for (limits, statuses) in [(&inner_limits, &inner_statuses), (&outer_limits, &outer_statuses)] {
            let quotas: Vec<Quota> = limits.iter().map(Limit::quota).collect();
            render(both, limits, None, &quotas, &Decision::new(statuses)).apply(&mut headers);
        }
        prop_assert_eq!(headers.get_all(ratelimit()).iter().count(), 1);
        let state = parse_list(headers[&ratelimit()].to_str().unwrap()).unwrap();
        let names: Vec<&str> = inner_limits.iter().chain(&outer_limits).map(Limit::name).collect();
        prop_assert_eq!(state.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), names);
        let remaining: u64 = headers[&x_remaining()].to_str().unwrap().parse().unwrap();
        let binding = |statuses: &[LimitStatus]| {
            statuses
                .iter()
                .min_by_key(|s| (!s.exceeded(), s.remaining(), std::cmp::Reverse(s.reset())))
                .unwrap()
                .remaining()
        };
        prop_assert_eq!(remaining, binding(&inner_statuses).min(binding(&outer_statuses)));
    }
}
