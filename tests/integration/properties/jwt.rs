//! JWT bearer validation: any bytes as a token and any JSON correctly signed with the HMAC
//! key are a decision, never a panic; a valid token verifies and says what it carries; any
//! one changed byte of it never verifies.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use tollgate::clock::ManualClock;
use tollgate::jwt::{Algorithm, JwtAuthenticator, JwtKey, JwtLayer};

use super::{config, config_scaled};

const NOW: u64 = 1_700_000_000;
const LEEWAY: u64 = 60;
const SECRET: &[u8] = b"properties-0123456789abcdef-properties-0123456789abcdef";

fn authenticator(cache: bool) -> JwtAuthenticator {
    let mut builder = JwtLayer::builder(JwtKey::hmac(SECRET, Algorithm::HS256).unwrap()).clock(
        Arc::new(ManualClock::new(UNIX_EPOCH + Duration::from_secs(NOW))),
    );
    if !cache {
        builder = builder.no_cache();
    }
    builder.build().unwrap().authenticator().clone()
}

fn sign(header: &str, payload: &str) -> String {
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, SECRET);
    let tag = aws_lc_rs::hmac::sign(&key, message.as_bytes());
    format!("{message}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

/// Any JSON value, a few levels deep, with numbers near the times that matter.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        (NOW - 1_000..NOW + 1_000).prop_map(Value::from),
        ".{0,8}".prop_map(Value::from),
        Just(Value::from("HS256")),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec(("[a-z]{0,4}", inner), 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Object text from members, duplicates kept.
fn object_text(members: &[(String, Value)]) -> String {
    let members: Vec<String> = members
        .iter()
        .map(|(k, v)| format!("{}:{v}", Value::from(k.as_str())))
        .collect();
    format!("{{{}}}", members.join(","))
}

fn members(names: &'static [&'static str]) -> impl Strategy<Value = Vec<(String, Value)>> {
    proptest::collection::vec(
        (
            proptest::sample::select(names).prop_map(str::to_owned),
            json_value(),
        ),
        0..7,
    )
}

const HEADER_NAMES: &[&str] = &["alg", "alg", "typ", "kid", "crit", "jku", "x"];
const CLAIM_NAMES: &[&str] = &[
    "sub", "iss", "aud", "exp", "exp", "nbf", "iat", "jti", "scope", "scp", "x",
];

/// The members `StandardClaims` reads with a type (a token with, say, `azp: false` is
/// malformed to the default layer); extra members in a valid token avoid them.
const TYPED_CLAIMS: &[&str] = &[
    "sub",
    "iss",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "scope",
    "scp",
    "email",
    "name",
    "roles",
    "permissions",
    "azp",
    "client_id",
];

/// A scope token (RFC 6749 §3.3).
fn scope() -> impl Strategy<Value = String> {
    "[!#-\\[\\]-~]{1,10}"
}

proptest! {
    #![proptest_config(config())]

    /// Any text as the token: refused, never a panic.
    #[test]
    fn any_text_is_refused(token in prop_oneof![
        ".{0,200}",
        "[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,60}",
        "eyJ[A-Za-z0-9_.-]{0,120}",
    ]) {
        prop_assert!(authenticator(false).validate(&token).is_err());
    }
}

proptest! {
    #![proptest_config(config_scaled(2))]

    /// Any header and any claims, correctly signed: a decision, never a panic; an accepted
    /// token met every check (HS256 named once, no `crit`, an `exp` not past, `nbf`/`iat` not
    /// in the future, no audience) and its subject reads back.
    #[test]
    fn any_signed_json_is_a_decision(
        header in members(HEADER_NAMES),
        claims in members(CLAIM_NAMES),
        plausible in any::<bool>(),
    ) {
        // Half the cases start from a valid header and expiry, so that many are accepted.
        let (mut header, mut claims) = (header, claims);
        if plausible {
            header.retain(|(n, _)| n != "alg");
            header.insert(0, ("alg".to_owned(), Value::from("HS256")));
            claims.retain(|(n, _)| n != "exp");
            claims.insert(0, ("exp".to_owned(), Value::from(NOW + 600)));
        }
        let (header_text, claims_text) = (object_text(&header), object_text(&claims));
        let token = sign(&header_text, &claims_text);
        let Ok(verified) = authenticator(true).validate(&token) else {
            return Ok(());
        };
        let value = |members: &[(String, Value)], name: &str| {
            let mut found = members.iter().filter(|(n, _)| n == name);
            let first = found.next().map(|(_, v)| v.clone());
            (first, found.next().is_some())
        };
        prop_assert_eq!(value(&header, "alg"), (Some(Value::from("HS256")), false));
        prop_assert!(value(&header, "crit").0.is_none_or(|v| v.is_null()));
        let secs = |name: &str| value(&claims, name).0.and_then(|v| v.as_f64());
        prop_assert!(secs("exp").is_some_and(|exp| exp + LEEWAY as f64 > NOW as f64), "{}", claims_text);
        prop_assert!(secs("nbf").is_none_or(|nbf| nbf <= (NOW + LEEWAY) as f64));
        prop_assert!(secs("iat").is_none_or(|iat| iat <= (NOW + LEEWAY) as f64));
        prop_assert!(value(&claims, "aud").0.is_none_or(|v| v.is_null()));
        let sub = value(&claims, "sub").0.filter(|v| !v.is_null());
        prop_assert_eq!(verified.user().subject().map(Value::from), sub);
    }

    /// A token with valid claims and any extra (untyped) members verifies and carries its subject
    /// and scopes; changing any one byte of it (header, payload, signature or a dot) never
    /// verifies, with or without the verified-token cache.
    #[test]
    fn a_valid_token_verifies_and_any_changed_byte_does_not(
        sub in ".{0,16}",
        scopes in proptest::collection::vec(scope(), 0..4),
        extra in proptest::collection::vec(("[a-z]{1,6}", json_value()), 0..4),
        position in any::<prop::sample::Index>(),
        replacement in 0x21u8..0x7f,
        cache in any::<bool>(),
    ) {
        let mut claims: Map<String, Value> = extra
            .into_iter()
            .filter(|(name, _)| !TYPED_CLAIMS.contains(&name.as_str()))
            .collect();
        claims.insert("sub".into(), sub.clone().into());
        claims.insert("exp".into(), (NOW + 600).into());
        claims.insert("iat".into(), NOW.into());
        claims.insert("scope".into(), scopes.join(" ").into());
        let token = sign(&json!({"alg": "HS256", "typ": "JWT"}).to_string(), &Value::Object(claims).to_string());
        let authenticator = authenticator(cache);
        let verified = authenticator.validate(&token).unwrap();
        prop_assert_eq!(verified.user().subject(), Some(sub.as_str()));
        let mut expected = scopes;
        expected.sort_unstable();
        expected.dedup();
        let mut got = verified.user().scopes().to_vec();
        got.sort_unstable();
        prop_assert_eq!(got, expected);

        let mut changed = token.clone().into_bytes();
        let at = position.index(changed.len());
        changed[at] = if changed[at] == replacement { replacement ^ 0x01 } else { replacement };
        let changed = String::from_utf8(changed).unwrap();
        prop_assert!(authenticator.validate(&changed).is_err(), "byte {} of {}", at, token);
    }
}
