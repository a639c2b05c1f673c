//! Finding the bearer token in a request (RFC 6750 §2).

use http::header::{AUTHORIZATION, COOKIE};

use super::validation::Refusal;
use crate::auth::{Repeated, single_value};
use crate::rejection::RejectionKind;

/// Where the layer looks for a token. The `Authorization: Bearer` header always; the
/// `access_token` query parameter (RFC 6750 §2.3) and a cookie only when enabled.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sources {
    pub(crate) query: bool,
    pub(crate) cookie: Option<Box<str>>,
}

/// What the request carries.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Found<'a> {
    None,
    /// The credential's bytes, not yet checked to be a b64token: a verified-token cache hit
    /// (which only holds tokens that passed every check) needs no more; a miss goes through
    /// [`token`] first.
    Token(&'a [u8]),
}

/// Finds the one bearer token of `head`. More than one credential (two `Authorization`
/// headers, or a header and a query parameter) or a `Bearer` header without a token is
/// `invalid_request` (400). A token longer than `max_len` is refused before anything scans
/// or decodes it.
pub(crate) fn find<'a>(
    headers: &'a http::HeaderMap,
    uri: &'a http::Uri,
    sources: &Sources,
    max_len: usize,
) -> Result<Found<'a>, Refusal> {
    let mut found = None;
    let authorization = single_value(headers, AUTHORIZATION).map_err(|Repeated| {
        invalid_request("The request carries more than one Authorization header.")
    })?;
    if let Some(value) = authorization {
        found = from_authorization(value.as_bytes())?;
    }
    if sources.query {
        if let Some(token) = from_query(uri.query())? {
            if found.replace(token.as_bytes()).is_some() {
                return Err(several());
            }
        }
    }
    if let Some(name) = &sources.cookie {
        if let Some(token) = from_cookies(headers, name)? {
            if found.replace(token.as_bytes()).is_some() {
                return Err(several());
            }
        }
    }
    match found {
        None => Ok(Found::None),
        Some(token) if token.len() > max_len => Err(Refusal::new(
            RejectionKind::MalformedCredential,
            "The token is larger than this server accepts.",
        )),
        Some(token) => Ok(Found::Token(token)),
    }
}

/// Parses an `Authorization` value: `Bearer` (any case), one or more spaces, the token.
/// Another scheme is not ours (`Ok(None)`).
fn from_authorization(value: &[u8]) -> Result<Option<&[u8]>, Refusal> {
    const SCHEME: &[u8] = b"bearer";
    let is_bearer = value.len() >= SCHEME.len()
        && value[..SCHEME.len()].eq_ignore_ascii_case(SCHEME)
        && (value.len() == SCHEME.len() || value[SCHEME.len()] == b' ');
    if !is_bearer {
        return Ok(None);
    }
    let rest = &value[SCHEME.len()..];
    let start = rest.iter().position(|&b| b != b' ').unwrap_or(rest.len());
    let token = &rest[start..];
    if token.is_empty() {
        return Err(not_a_token());
    }
    Ok(Some(token))
}

/// The token, once it is known to be one RFC 6750 b64token (which also rules out a second
/// token after a space, and anything not ASCII). It stays bytes: nothing downstream needs it
/// as text, so it is not validated as UTF-8 a second time.
pub(crate) fn token(raw: &[u8]) -> Result<&[u8], Refusal> {
    if !is_b64token(raw) {
        return Err(not_a_token());
    }
    Ok(raw)
}

fn not_a_token() -> Refusal {
    invalid_request("The credential is not of the form `Bearer <token>` (RFC 6750).")
}

/// RFC 6750 §2.1: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
///
/// Checked in chunks without an early exit, as comparisons the compiler turns into vector
/// instructions: a token is a few hundred bytes, checked on every uncached request.
fn is_b64token(token: &[u8]) -> bool {
    /// 1 when `c` is not a b64token character, else 0: arithmetic only, no table, no branch.
    #[inline(always)]
    fn bad(c: u8) -> u8 {
        let alpha = (c | 0x20).wrapping_sub(b'a') < 26;
        let digit = c.wrapping_sub(b'0') < 10;
        let special =
            (c == b'-') | (c == b'.') | (c == b'_') | (c == b'~') | (c == b'+') | (c == b'/');
        u8::from(!(alpha | digit | special))
    }
    let end = token.iter().rposition(|&b| b != b'=').map_or(0, |i| i + 1);
    let body = &token[..end];
    let mut chunks = body.chunks_exact(64);
    for chunk in &mut chunks {
        if chunk.iter().fold(0u8, |any, &c| any | bad(c)) != 0 {
            return false;
        }
    }
    end > 0 && chunks.remainder().iter().fold(0u8, |any, &c| any | bad(c)) == 0
}

fn from_query(query: Option<&str>) -> Result<Option<&str>, Refusal> {
    let mut found = None;
    for pair in query.unwrap_or("").split('&') {
        if let Some(token) = pair.strip_prefix("access_token=") {
            if found.replace(token).is_some() {
                return Err(several());
            }
        }
    }
    match found {
        Some(token) if token.is_empty() || !is_b64token(token.as_bytes()) => Err(invalid_request(
            "The access_token query parameter is not a token.",
        )),
        other => Ok(other),
    }
}

fn from_cookies<'a>(headers: &'a http::HeaderMap, name: &str) -> Result<Option<&'a str>, Refusal> {
    let mut found = None;
    for value in headers.get_all(COOKIE) {
        let Ok(value) = value.to_str() else { continue };
        for pair in value.split(';') {
            let Some((key, token)) = pair.trim().split_once('=') else {
                continue;
            };
            if key == name && found.replace(token).is_some() {
                return Err(several());
            }
        }
    }
    match found {
        Some(token) if token.is_empty() || !is_b64token(token.as_bytes()) => {
            Err(invalid_request("The token cookie does not hold a token."))
        }
        other => Ok(other),
    }
}

fn several() -> Refusal {
    invalid_request("The request carries a token in more than one place.")
}

fn invalid_request(detail: &'static str) -> Refusal {
    Refusal::new(RejectionKind::InvalidRequest, detail)
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        headers: &[(&str, &[u8])],
        uri: &str,
        sources: &Sources,
    ) -> Result<Option<String>, RejectionKind> {
        let mut map = http::HeaderMap::new();
        for (name, value) in headers {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                http::HeaderValue::from_bytes(value).unwrap(),
            );
        }
        let uri: http::Uri = uri.parse().unwrap();
        match find(&map, &uri, sources, 64) {
            Ok(Found::None) => Ok(None),
            Ok(Found::Token(raw)) => token(raw)
                .map(|t| Some(String::from_utf8(t.to_vec()).unwrap()))
                .map_err(|r| r.kind()),
            Err(r) => Err(r.kind()),
        }
    }

    #[test]
    fn authorization_header_cases() {
        use RejectionKind::{InvalidRequest, MalformedCredential};
        let none = Sources::default();
        let tok = || Ok(Some("a.b.c".to_owned()));
        let cases: &[(
            &str,
            &[(&str, &[u8])],
            Result<Option<String>, RejectionKind>,
        )] = &[
            ("no header", &[], Ok(None)),
            ("canonical", &[("authorization", b"Bearer a.b.c")], tok()),
            (
                "lower-case scheme",
                &[("authorization", b"bearer a.b.c")],
                tok(),
            ),
            (
                "upper-case scheme",
                &[("authorization", b"BEARER a.b.c")],
                tok(),
            ),
            (
                "several spaces",
                &[("authorization", b"Bearer   a.b.c")],
                tok(),
            ),
            (
                "padding",
                &[("authorization", b"Bearer a.b.c==")],
                Ok(Some("a.b.c==".to_owned())),
            ),
            (
                "other scheme",
                &[("authorization", b"Basic dXNlcjpwdw==")],
                Ok(None),
            ),
            (
                "scheme prefix",
                &[("authorization", b"Bearerx a.b.c")],
                Ok(None),
            ),
            (
                "no token",
                &[("authorization", b"Bearer")],
                Err(InvalidRequest),
            ),
            (
                "blank token",
                &[("authorization", b"Bearer  ")],
                Err(InvalidRequest),
            ),
            (
                "two tokens",
                &[("authorization", b"Bearer a.b.c d.e.f")],
                Err(InvalidRequest),
            ),
            (
                "bad chars",
                &[("authorization", b"Bearer a,b")],
                Err(InvalidRequest),
            ),
            (
                "non-ascii",
                &[("authorization", b"Bearer a\xffb")],
                Err(InvalidRequest),
            ),
            (
                "only padding",
                &[("authorization", b"Bearer ==")],
                Err(InvalidRequest),
            ),
            (
                "two headers",
                &[
                    ("authorization", b"Bearer a.b.c"),
                    ("authorization", b"Bearer a.b.c"),
                ],
                Err(InvalidRequest),
            ),
            ("oversized", &[("authorization", &[b'a'; 80])], Ok(None)),
        ];
        for (name, headers, expected) in cases {
            assert_eq!(&run(headers, "/", &none), expected, "{name}");
        }
        let mut long = b"Bearer ".to_vec();
        long.extend_from_slice(&[b'a'; 65]);
        assert_eq!(
            run(&[("authorization", &long)], "/", &none),
            Err(MalformedCredential)
        );
    }

    #[test]
    fn query_and_cookie_only_when_enabled() {
        let off = Sources::default();
        let on = Sources {
            query: true,
            cookie: Some("at".into()),
        };
        assert_eq!(run(&[], "/?access_token=a.b.c", &off), Ok(None));
        assert_eq!(
            run(&[], "/?x=1&access_token=a.b.c", &on),
            Ok(Some("a.b.c".into()))
        );
        assert_eq!(run(&[("cookie", b"x=1; at=a.b.c")], "/", &off), Ok(None));
        assert_eq!(
            run(&[("cookie", b"x=1; at=a.b.c")], "/", &on),
            Ok(Some("a.b.c".into()))
        );
        assert_eq!(
            run(
                &[("authorization", b"Bearer a.b.c")],
                "/?access_token=a.b.c",
                &on
            ),
            Err(RejectionKind::InvalidRequest)
        );
        assert_eq!(
            run(&[("cookie", b"at=a.b.c")], "/?access_token=a.b.c", &on),
            Err(RejectionKind::InvalidRequest)
        );
        assert_eq!(
            run(&[], "/?access_token=a&access_token=b", &on),
            Err(RejectionKind::InvalidRequest)
        );
    }
}
