//! Generated inputs for bearer-token extraction: never a panic, what is found is always one of
//! the request's own bytes, and a well-formed `Bearer`/query/cookie token is found exactly.

use proptest::prelude::*;

use super::*;
use crate::proptests::{config, header_bytes};

/// RFC 6750 §2.1 b64token, written independently of `is_b64token`.
fn b64token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._~+/-]{1,40}={0,3}"
}

/// The oracle for `token`: one or more token characters, then only `=`.
fn is_b64token_oracle(raw: &[u8]) -> bool {
    let body_len = raw.len() - raw.iter().rev().take_while(|&&b| b == b'=').count();
    body_len > 0
        && raw[..body_len]
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

/// `bearer` in a random case.
fn bearer_scheme() -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<bool>(), 6).prop_map(|upper| {
        "bearer"
            .chars()
            .zip(upper)
            .map(|(c, up)| if up { c.to_ascii_uppercase() } else { c })
            .collect()
    })
}

/// Authorization values: mostly near `Bearer …`, some anything.
fn authorization_value() -> impl Strategy<Value = Vec<u8>> {
    let prefix = prop_oneof![
        Just(Vec::new()),
        Just(b"Bearer ".to_vec()),
        Just(b"bearer".to_vec()),
        Just(b"BEARER   ".to_vec()),
        Just(b"Basic ".to_vec()),
    ];
    (prefix, header_bytes(48)).prop_map(|(mut prefix, rest)| {
        prefix.extend(rest);
        prefix
    })
}

/// Query strings a `Uri` accepts, with `access_token=` now and then.
fn query() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            "[A-Za-z0-9._~+/=%-]{0,12}",
            "access_token=[A-Za-z0-9._~+/=%-]{0,12}",
        ],
        0..4,
    )
    .prop_map(|pairs| pairs.join("&"))
}

fn headers(authorization: &[Vec<u8>], cookies: &[Vec<u8>]) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    for value in authorization {
        map.append(AUTHORIZATION, http::HeaderValue::from_bytes(value).unwrap());
    }
    for value in cookies {
        map.append(COOKIE, http::HeaderValue::from_bytes(value).unwrap());
    }
    map
}

/// Whether `part` lies inside `whole` (the same memory, not equal bytes elsewhere).
fn within(part: &[u8], whole: &[u8]) -> bool {
    let (start, end) = (part.as_ptr() as usize, part.as_ptr() as usize + part.len());
    let (w_start, w_end) = (
        whole.as_ptr() as usize,
        whole.as_ptr() as usize + whole.len(),
    );
    w_start <= start && end <= w_end
}

proptest! {
    #![proptest_config(config())]

    /// Anything in the Authorization, Cookie headers and the query: a decision, never a
    /// panic; a found token is a slice of the request no longer than `max_len`, and `token`
    /// accepts it exactly when it is a b64token.
    #[test]
    fn find_never_panics_and_finds_only_request_bytes(
        authorization in proptest::collection::vec(authorization_value(), 0..3),
        cookies in proptest::collection::vec(header_bytes(48), 0..3),
        query in query(),
        from_query in any::<bool>(),
        cookie_name in prop_oneof![Just(None), Just(Some("at")), Just(Some(""))],
        max_len in 0usize..64,
    ) {
        let map = headers(&authorization, &cookies);
        let uri: http::Uri = format!("/p?{query}").parse().unwrap();
        let sources = Sources { query: from_query, cookie: cookie_name.map(Box::from) };
        if let Ok(Found::Token(raw)) = find(&map, &uri, &sources, max_len) {
            prop_assert!(raw.len() <= max_len);
            prop_assert!(!raw.is_empty());
            let inside = map.iter().any(|(_, v)| within(raw, v.as_bytes()))
                || within(raw, uri.query().unwrap_or("").as_bytes());
            prop_assert!(inside, "the token is not from the request");
            prop_assert_eq!(token(raw).is_ok(), is_b64token_oracle(raw));
        }
    }

    /// `token` agrees with the RFC 6750 grammar on any bytes, and hands back the same text.
    #[test]
    fn token_is_exactly_the_b64token_grammar(raw in proptest::collection::vec(any::<u8>(), 0..64)) {
        match token(&raw) {
            Ok(text) => {
                prop_assert!(is_b64token_oracle(&raw));
                prop_assert_eq!(text, &raw[..]);
            }
            Err(refusal) => {
                prop_assert!(!is_b64token_oracle(&raw));
                prop_assert_eq!(refusal.kind(), RejectionKind::InvalidRequest);
            }
        }
    }

    /// `Bearer` in any case, one or more spaces, a b64token: found, exactly.
    #[test]
    fn a_bearer_header_yields_its_token(
        scheme in bearer_scheme(),
        spaces in 1usize..4,
        tok in b64token(),
    ) {
        let value = format!("{scheme}{}{tok}", " ".repeat(spaces));
        let map = headers(&[value.into_bytes()], &[]);
        let uri = http::Uri::from_static("/");
        let found = find(&map, &uri, &Sources::default(), 64);
        prop_assert_eq!(found, Ok(Found::Token(tok.as_bytes())));
        prop_assert_eq!(token(tok.as_bytes()).ok(), Some(tok.as_bytes()));
    }

    /// A value whose scheme is not `bearer` is not ours, whatever follows.
    #[test]
    fn another_scheme_is_not_ours(value in header_bytes(48)) {
        let is_bearer = value.len() >= 6
            && value[..6].eq_ignore_ascii_case(b"bearer")
            && value.get(6).is_none_or(|&b| b == b' ');
        if !is_bearer {
            prop_assert_eq!(from_authorization(&value), Ok(None));
        } else if let Ok(Some(found)) = from_authorization(&value) {
            prop_assert!(found.first().is_some_and(|&b| b != b' '));
            prop_assert!(value.ends_with(found));
        }
    }

    /// The one `access_token` among other parameters is the token; two are refused.
    #[test]
    fn the_query_parameter_is_found_among_others(
        before in proptest::collection::vec("[a-z]{1,5}=[A-Za-z0-9%]{0,5}", 0..3),
        after in proptest::collection::vec("[a-z]{1,5}=[A-Za-z0-9%]{0,5}", 0..3),
        tok in b64token(),
        twice in any::<bool>(),
    ) {
        let mut pairs = before;
        pairs.retain(|p| !p.starts_with("access_token="));
        pairs.push(format!("access_token={tok}"));
        pairs.extend(after.into_iter().filter(|p| !p.starts_with("access_token=")));
        if twice {
            pairs.push(format!("access_token={tok}"));
        }
        let query = pairs.join("&");
        match from_query(Some(&query)) {
            Ok(found) => {
                prop_assert!(!twice);
                prop_assert_eq!(found, Some(tok.as_str()));
            }
            Err(refusal) => {
                prop_assert!(twice);
                prop_assert_eq!(refusal.kind(), RejectionKind::InvalidRequest);
            }
        }
    }

    /// Any query string: a decision, and a found token is a b64token.
    #[test]
    fn any_query_string_is_a_decision(query in any::<String>()) {
        if let Ok(Some(found)) = from_query(Some(&query)) {
            prop_assert!(is_b64token_oracle(found.as_bytes()));
        }
    }

    /// The named cookie among others (in one or two `Cookie` lines) is the token.
    #[test]
    fn the_named_cookie_is_found_among_others(
        others in proptest::collection::vec("[a-z]{1,5}=[A-Za-z0-9]{0,5}", 0..4),
        tok in b64token(),
        split in any::<bool>(),
    ) {
        let others: Vec<String> =
            others.into_iter().filter(|p| !p.starts_with("at=")).collect();
        let mine = format!("at={tok}");
        let lines: Vec<Vec<u8>> = if split {
            vec![others.join("; ").into_bytes(), mine.into_bytes()]
        } else {
            let mut all = others;
            all.push(mine);
            vec![all.join("; ").into_bytes()]
        };
        let map = headers(&[], &lines);
        prop_assert_eq!(from_cookies(&map, "at"), Ok(Some(tok.as_str())));
    }
}
