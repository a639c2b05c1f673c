//! Generated rejections through the renderings: the problem+json body, every challenge,
//! `Retry-After` and `grpc-message` always parse back to what was put in, and nothing panics.

use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::proptests::config;
use crate::rejection::{Challenge, RejectionKind};

const KINDS: [RejectionKind; 10] = [
    RejectionKind::MissingCredential,
    RejectionKind::InvalidRequest,
    RejectionKind::MalformedCredential,
    RejectionKind::InvalidCredential,
    RejectionKind::ExpiredCredential,
    RejectionKind::RevokedCredential,
    RejectionKind::InsufficientScope,
    RejectionKind::Forbidden,
    RejectionKind::RateLimited,
    RejectionKind::Unavailable,
];

/// Any duration, the extremes included.
fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        (any::<u64>(), 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
        (0u64..100_000, 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
        Just(Duration::ZERO),
        Just(Duration::MAX),
    ]
}

/// Text with quotes, backslashes, controls and non-ASCII now and then.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![".{0,24}", "[ -~]{0,24}", "[\"\\\\a ]{0,8}"]
}

/// Parses `Scheme a="x", b="y"` (RFC 9110 §11.6.1, quoted-string values), or `None`.
fn parse_challenge(value: &str) -> Option<(String, Vec<(String, String)>)> {
    let (scheme, mut rest) = match value.split_once(' ') {
        Some((scheme, rest)) => (scheme, rest),
        None => (value, ""),
    };
    let mut params = Vec::new();
    while !rest.is_empty() {
        if !params.is_empty() {
            rest = rest.strip_prefix(", ")?;
        }
        let (name, after) = rest.split_once("=\"")?;
        let mut unescaped = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next()? {
                (_, '\\') => unescaped.push(chars.next()?.1),
                (i, '"') => break i,
                (_, c) => unescaped.push(c),
            }
        };
        params.push((name.to_owned(), unescaped));
        rest = &after[end + 1..];
    }
    Some((scheme.to_owned(), params))
}

/// What a challenge parameter becomes: visible ASCII and spaces kept, anything else `?`.
fn shown(s: &str) -> String {
    s.chars()
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .collect()
}

fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex = [bytes.next()?, bytes.next()?];
            out.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
        } else {
            out.push(b);
        }
    }
    Some(out)
}

proptest! {
    #![proptest_config(config())]

    /// `Retry-After` is whole seconds, rounded up, at least 1, for every duration.
    #[test]
    fn retry_after_rounds_up_and_is_never_zero(after in duration()) {
        let secs = retry_after_secs(after);
        prop_assert!(secs >= 1);
        prop_assert!(u128::from(secs) * 1_000_000_000 >= after.as_nanos().min(u128::from(u64::MAX) * 1_000_000_000));
        prop_assert!(secs == 1 || u128::from(secs - 1) * 1_000_000_000 < after.as_nanos());
    }

    /// The HTTP rendering of any rejection: the body is JSON carrying the detail and scope as
    /// given, each challenge parses back to its parameters, `Retry-After` is the rounded-up
    /// seconds.
    #[test]
    fn http_renderings_parse_back(
        kind in proptest::sample::select(&KINDS[..]),
        detail in text(),
        scope in proptest::option::of(text()),
        realm in proptest::option::of(text()),
        bearer in any::<bool>(),
        api_key in any::<bool>(),
        retry_after in proptest::option::of(duration()),
    ) {
        let challenge = match (bearer, api_key) {
            (true, true) => Challenge::bearer().and(Challenge::api_key(http::HeaderName::from_static("x-api-key"))),
            (true, false) => Challenge::bearer(),
            (false, true) => Challenge::api_key(http::HeaderName::from_static("x-api-key")),
            (false, false) => Challenge::none(),
        };
        let mut rejection = Rejection::new(kind).with_detail(detail.clone()).with_challenge(challenge);
        if let Some(scope) = &scope {
            rejection = rejection.with_scope(scope.clone());
        }
        if let Some(after) = retry_after {
            rejection = rejection.with_retry_after(after);
        }
        let response = http(&rejection, realm.as_deref());
        prop_assert_eq!(response.status(), kind.status());
        let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        prop_assert_eq!(body["code"].as_str(), Some(kind.code()));
        prop_assert_eq!(body["detail"].as_str(), Some(detail.as_str()));
        prop_assert_eq!(body["scope"].as_str(), scope.as_deref());

        let challenges: Vec<_> = response.headers().get_all(WWW_AUTHENTICATE).iter().collect();
        if !kind.challenges() {
            prop_assert!(challenges.is_empty());
        }
        for value in challenges {
            let (scheme, params) = parse_challenge(value.to_str().unwrap()).unwrap();
            let get = |name: &str| params.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
            prop_assert!(scheme == "Bearer" || scheme == "ApiKey", "{}", scheme);
            prop_assert_eq!(get("realm"), realm.as_deref().map(shown));
            prop_assert_eq!(get("scope"), scope.as_deref().map(shown));
            if scheme == "Bearer" && kind.bearer_error().is_some() {
                prop_assert_eq!(get("error_description"), Some(shown(&detail)));
            }
            if scheme == "ApiKey" {
                prop_assert_eq!(get("header"), Some("x-api-key".to_owned()));
            }
        }
        let shown_after = response.headers().get(RETRY_AFTER).map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
        prop_assert_eq!(shown_after, retry_after.map(retry_after_secs));
    }

    /// `grpc-message` is printable ASCII and percent-decodes to the detail's bytes.
    #[test]
    fn grpc_messages_percent_decode_to_the_detail(
        kind in proptest::sample::select(&KINDS[..]),
        detail in text(),
    ) {
        let rejection = Rejection::new(kind).with_detail(detail.clone());
        let response = grpc(&rejection, HeaderValue::from_static("application/grpc"));
        let message = response.headers()["grpc-message"].to_str().unwrap();
        prop_assert!(message.bytes().all(|b| (0x20..=0x7e).contains(&b)));
        prop_assert_eq!(percent_decode(message), Some(detail.into_bytes()));
    }
}

/// Found by `retry_after_rounds_up_and_is_never_zero` (minimal input `Duration::MAX`): rounding
/// up overflowed, a panic in debug builds and `Retry-After: 1` in release ("retry at once" for
/// a refusal that lasts forever). It now saturates, as the `RateLimit` fields' rounding does.
#[test]
fn retry_after_of_the_longest_duration_saturates() {
    assert_eq!(retry_after_secs(Duration::MAX), u64::MAX);
    let response = http(
        &Rejection::new(RejectionKind::RateLimited).with_retry_after(Duration::MAX),
        None,
    );
    assert_eq!(response.headers()[RETRY_AFTER], "18446744073709551615");
}
