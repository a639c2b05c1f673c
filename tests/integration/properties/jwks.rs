//! What an identity provider's JWKS endpoint sends: any document (any JSON, JWK-shaped
//! objects with any members) is keys or an error, never a panic; `Cache-Control` reads as
//! documented.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use tollgate::jwt::{JwksDocument, JwtKey, KeySet};

use super::config;

fn b64_bytes() -> impl Strategy<Value = Value> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..70)
            .prop_map(|b| Value::from(URL_SAFE_NO_PAD.encode(b))),
        Just(Value::from("AQAB")),
        ".{0,12}".prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
    ]
}

/// A JWK-shaped object: a key type, an algorithm, a curve and key material, any of them odd.
fn jwk() -> impl Strategy<Value = Value> {
    let kty = proptest::sample::select(&["RSA", "EC", "OKP", "oct", "x", ""][..]);
    let alg = proptest::option::of(proptest::sample::select(
        &[
            "RS256", "PS384", "ES256", "ES384", "EdDSA", "HS256", "none", "x",
        ][..],
    ));
    let crv = proptest::option::of(proptest::sample::select(
        &["P-256", "P-384", "Ed25519", "X25519", "x"][..],
    ));
    let use_ = proptest::option::of(proptest::sample::select(&["sig", "enc", "x"][..]));
    (
        kty,
        alg,
        crv,
        use_,
        proptest::collection::vec(
            (
                proptest::sample::select(&["n", "e", "x", "y", "k", "d", "kid"][..]),
                b64_bytes(),
            ),
            0..6,
        ),
    )
        .prop_map(|(kty, alg, crv, use_, material)| {
            let mut jwk = Map::new();
            jwk.insert("kty".into(), kty.into());
            if let Some(alg) = alg {
                jwk.insert("alg".into(), alg.into());
            }
            if let Some(crv) = crv {
                jwk.insert("crv".into(), crv.into());
            }
            if let Some(use_) = use_ {
                jwk.insert("use".into(), use_.into());
            }
            for (name, value) in material {
                jwk.insert(name.into(), value);
            }
            Value::Object(jwk)
        })
}

proptest! {
    #![proptest_config(config())]

    /// Any bytes as a JWKS or a JWK: keys or an error, never a panic.
    #[test]
    fn any_bytes_are_keys_or_an_error(body in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = KeySet::from_jwks_json(&body);
        let _ = JwtKey::from_jwk_json(&body);
    }

    /// JWK-shaped objects with odd members: keys or an error, never a panic; a set keeps no
    /// more keys than it lists.
    #[test]
    fn odd_jwks_are_keys_or_an_error(keys in proptest::collection::vec(jwk(), 0..4)) {
        for key in &keys {
            let _ = JwtKey::from_jwk_json(key.to_string());
        }
        let document = json!({ "keys": keys }).to_string();
        if let Ok(set) = KeySet::from_jwks_json(&document) {
            prop_assert!(set.len() <= keys.len());
        }
    }

    /// `Cache-Control`: any lines are read or ignored; `no-store`/`no-cache` mean zero, else
    /// the last well-formed `max-age` counts.
    #[test]
    fn cache_control_reads_as_documented(
        directives in proptest::collection::vec(prop_oneof![
            any::<u64>().prop_map(|n| format!("max-age={n}")),
            any::<u64>().prop_map(|n| format!(" MAX-AGE = \"{n}\" ")),
            Just("public".to_owned()),
            Just("no-store".to_owned()),
            Just("No-Cache".to_owned()),
            "[ -~]{0,16}",
        ], 0..5),
    ) {
        let mut headers = http::HeaderMap::new();
        for directive in &directives {
            headers.append(http::header::CACHE_CONTROL, http::HeaderValue::from_str(directive).unwrap());
        }
        let got = JwksDocument::from_response(&headers, "").max_age();
        // The oracle, directive by directive as the lines come.
        let mut expected = None;
        for directive in directives.iter().flat_map(|line| line.split(',')) {
            let directive = directive.trim();
            if directive.eq_ignore_ascii_case("no-store") || directive.eq_ignore_ascii_case("no-cache") {
                expected = Some(Duration::ZERO);
                break;
            }
            if let Some((name, value)) = directive.split_once('=') {
                if name.trim().eq_ignore_ascii_case("max-age") {
                    if let Ok(secs) = value.trim().trim_matches('"').parse::<u64>() {
                        expected = Some(Duration::from_secs(secs));
                    }
                }
            }
        }
        prop_assert_eq!(got, expected);
    }
}
