//! Reading the one value of a credential header.

use http::header::AsHeaderName;
use http::{HeaderMap, HeaderValue};

/// The header was sent more than once.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Repeated;

/// The one value of header `name`: `Ok(None)` when it is absent, `Err(Repeated)` when it was
/// sent more than once (two credentials: the layers refuse that with 400).
///
/// When no header of the request has a second value (`len() == keys_len()`, as in nearly every
/// request) one lookup answers; otherwise every value of `name` is walked.
#[inline]
pub(crate) fn single_value<K: AsHeaderName>(
    headers: &HeaderMap,
    name: K,
) -> Result<Option<&HeaderValue>, Repeated> {
    if headers.len() == headers.keys_len() {
        return Ok(headers.get(name));
    }
    let mut values = headers.get_all(name).into_iter();
    let first = values.next();
    match values.next() {
        Some(_) => Err(Repeated),
        None => Ok(first),
    }
}

#[cfg(test)]
mod tests {
    use http::header::{ACCEPT, AUTHORIZATION, COOKIE};

    use super::*;

    fn map(lines: &[(http::HeaderName, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in lines {
            headers.append(name.clone(), HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn one_value_is_found_and_a_repeated_one_refused_whatever_else_repeats() {
        let value = |h: &HeaderMap| single_value(h, AUTHORIZATION).map(|v| v.cloned());
        let bearer = Some(HeaderValue::from_static("Bearer t"));

        assert_eq!(value(&map(&[])), Ok(None));
        assert_eq!(value(&map(&[(ACCEPT, "*/*")])), Ok(None));
        assert_eq!(
            value(&map(&[(AUTHORIZATION, "Bearer t")])),
            Ok(bearer.clone())
        );
        // Another header repeated (HTTP/2 splits cookies): the slow path, the same answers.
        let cookies = [(COOKIE, "a=1"), (COOKIE, "b=2")];
        assert_eq!(value(&map(&cookies)), Ok(None));
        let with_one = [
            cookies[0].clone(),
            (AUTHORIZATION, "Bearer t"),
            cookies[1].clone(),
        ];
        assert_eq!(value(&map(&with_one)), Ok(bearer));
        // Repeated itself, alone or beside other repeats, empty or not.
        let twice = [(AUTHORIZATION, "Bearer t"), (AUTHORIZATION, "Bearer u")];
        assert_eq!(value(&map(&twice)), Err(Repeated));
        let mut both = twice.to_vec();
        both.extend(cookies);
        assert_eq!(value(&map(&both)), Err(Repeated));
        assert_eq!(
            value(&map(&[(AUTHORIZATION, ""), (AUTHORIZATION, "")])),
            Err(Repeated)
        );
    }
}
