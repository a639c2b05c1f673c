//! Generated JOSE headers and claims: never a panic on any bytes or any JSON, the borrowing
//! parse (custom claims types) and the `StandardClaims` parse read the registered claims alike,
//! and NumericDates and scope strings read as RFC 7519 / RFC 6749 say.

use proptest::prelude::*;
use serde_json::Value;

use super::*;
use crate::proptests::config;

/// The scopes in the top-level claim `name`, as `ClaimMapping::only(name)` reads them.
fn named_scopes(json: &[u8], name: &str) -> Option<Vec<String>> {
    crate::jwt::mapping::at_path(json, &[Box::from(name)])
}

/// Any JSON value, a few levels deep.
pub(crate) fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        // Around the year-9999 bound.
        (0u64..=300_000_000_000u64).prop_map(Value::from),
        ".{0,8}".prop_map(Value::from),
        "[a-z ]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec(("[a-z]{0,4}", inner), 0..4)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

const REGISTERED: [&str; 10] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "scope",
    "scp",
    "x-unknown",
];

/// An object's text from members (duplicates kept: serde_json's `Value` would merge them).
fn object_text(members: &[(String, Value)]) -> String {
    let members: Vec<String> = members
        .iter()
        .map(|(k, v)| format!("{}:{v}", Value::from(k.as_str())))
        .collect();
    format!("{{{}}}", members.join(","))
}

/// Members with registered names (and one unknown), values of any type, repeats allowed.
fn registered_members() -> impl Strategy<Value = Vec<(String, Value)>> {
    proptest::collection::vec(
        (
            proptest::sample::select(&REGISTERED[..]).prop_map(str::to_owned),
            json_value(),
        ),
        0..6,
    )
}

/// The registered claims as plain values, to compare two parses.
type Seen = (
    Option<String>,
    Option<String>,
    Option<Vec<String>>,
    [Option<u64>; 3],
    Option<String>,
    Option<String>,
    Option<Vec<String>>,
);

fn seen(r: &Registered<'_>) -> Seen {
    let strings = |v: &Vec<Cow<'_, str>>| v.iter().map(|s| s.to_string()).collect();
    (
        r.iss.as_deref().map(str::to_owned),
        r.sub.as_deref().map(str::to_owned),
        r.aud.as_ref().map(|a| strings(&a.0)),
        [r.exp, r.nbf, r.iat],
        r.jti.as_deref().map(str::to_owned),
        r.scope.as_deref().map(str::to_owned),
        r.scp.as_ref().map(|s| strings(&s.0)),
    )
}

proptest! {
    #![proptest_config(config())]

    /// Any bytes as a header or a payload: parsed or refused, never a panic.
    #[test]
    fn any_bytes_are_parsed_or_refused(
        json in proptest::collection::vec(any::<u8>(), 0..96),
        brace in any::<bool>(),
    ) {
        let mut json = json;
        if brace {
            json.insert(0, b'{');
        }
        let _ = from_object::<Header<'_>>(&json);
        let _ = from_object::<Registered<'_>>(&json);
        let _ = from_object::<StandardClaims>(&json);
        let _ = named_scopes(&json, "roles");
    }

    /// Any JSON document: parsed or refused, never a panic; a non-object is always refused.
    #[test]
    fn any_json_is_parsed_or_refused(value in json_value()) {
        let json = value.to_string();
        let header = from_object::<Header<'_>>(json.as_bytes());
        let registered = from_object::<Registered<'_>>(json.as_bytes());
        let standard = from_object::<StandardClaims>(json.as_bytes());
        let scopes = named_scopes(json.as_bytes(), "a");
        if !value.is_object() {
            prop_assert!(header.is_none() && registered.is_none() && standard.is_none());
            prop_assert!(scopes.is_none());
        }
    }

    /// A claims object of registered members of any type (repeats included): the borrowing
    /// parse and the `StandardClaims` parse accept the same objects and read the same values.
    #[test]
    fn both_claim_parses_agree(members in registered_members()) {
        let json = object_text(&members);
        let borrowed = from_object::<Registered<'_>>(json.as_bytes()).map(|r| seen(&r));
        let standard = from_object::<StandardClaims>(json.as_bytes());
        let through_standard = standard.as_ref().map(|s| seen(&Registered::of(s)));
        prop_assert_eq!(borrowed, through_standard, "{}", json);
    }

    /// A NumericDate is a non-negative number up to year 9999, fractions truncated; anything
    /// else makes the claims unreadable.
    #[test]
    fn numeric_dates_read_as_rfc_7519_says(exp in json_value()) {
        let json = format!("{{\"exp\":{exp}}}");
        let parsed = from_object::<Registered<'_>>(json.as_bytes()).map(|r| r.exp);
        const MAX: u64 = 253_402_300_799;
        let expected = match &exp {
            Value::Null => Some(None),
            Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => (u <= MAX).then_some(Some(u)),
                (None, Some(_), _) => None, // negative
                (None, None, Some(f)) => {
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    let secs = f.trunc() as u64;
                    (f >= 0.0 && f <= MAX as f64).then_some(Some(secs))
                }
                _ => None,
            },
            _ => None,
        };
        prop_assert_eq!(parsed, expected, "{}", json);
    }

    /// Space-delimited scopes: no empty scope, none containing a space, and joined back they
    /// are the input with runs of spaces collapsed.
    #[test]
    fn scope_strings_split_on_spaces(items in proptest::collection::vec("[a-z: ]{0,16}", 0..4)) {
        let scopes = split_scopes(items.iter().map(String::as_str));
        for scope in &scopes {
            prop_assert!(!scope.is_empty() && !scope.contains(' '));
        }
        let words: Vec<&str> = items.iter().flat_map(|s| s.split_whitespace()).collect();
        prop_assert_eq!(scopes.join(" "), words.join(" "));
    }

    /// A named scope claim (string or array) reads as the split strings, whatever else the
    /// object holds; a second copy of it is refused.
    #[test]
    fn named_scope_claims_read_strings_and_arrays(
        scopes in proptest::collection::vec("[a-z:]{1,8}", 0..4),
        as_array in any::<bool>(),
        others in proptest::collection::vec(("[b-z]{1,4}", json_value()), 0..3),
        twice in any::<bool>(),
    ) {
        let value = if as_array {
            Value::from(scopes.clone())
        } else {
            Value::from(scopes.join(" "))
        };
        let mut members: Vec<(String, Value)> = others;
        members.push(("a".to_owned(), value.clone()));
        if twice {
            members.push(("a".to_owned(), value));
        }
        let json = object_text(&members);
        let read = named_scopes(json.as_bytes(), "a");
        if twice {
            prop_assert_eq!(read, None);
        } else {
            prop_assert_eq!(read, Some(scopes));
        }
    }

    /// A header's `alg`, `kid` and `typ` read back exactly (escapes included); a repeated
    /// member is refused.
    #[test]
    fn headers_read_back(
        alg in ".{0,12}",
        kid in proptest::option::of(".{0,12}"),
        typ in proptest::option::of(".{0,12}"),
        repeat in proptest::option::of(proptest::sample::select(&["alg", "kid", "typ"][..])),
    ) {
        let mut members = vec![("alg".to_owned(), Value::from(alg.as_str()))];
        if let Some(kid) = &kid {
            members.push(("kid".to_owned(), Value::from(kid.as_str())));
        }
        if let Some(typ) = &typ {
            members.push(("typ".to_owned(), Value::from(typ.as_str())));
        }
        let repeated = match repeat {
            Some("alg") => true,
            Some("kid") => kid.is_some(),
            Some(_) => typ.is_some(),
            None => false,
        };
        if repeated {
            members.push((repeat.unwrap().to_owned(), Value::from("x")));
        }
        let json = object_text(&members);
        let header = from_object::<Header<'_>>(json.as_bytes());
        if repeated {
            prop_assert!(header.is_none(), "{}", json);
        } else {
            let header = header.unwrap();
            prop_assert_eq!(&*header.alg, alg.as_str());
            prop_assert_eq!(header.kid.as_deref(), kid.as_deref());
            prop_assert_eq!(header.typ.as_deref(), typ.as_deref());
            prop_assert!(header.crit.is_none());
        }
    }
}
