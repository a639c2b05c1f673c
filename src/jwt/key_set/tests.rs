//! Key selection without `kid`, duplicate keys, and JWKS documents shaped like those of
//! Keycloak, Auth0, Entra ID, Cognito and Google (built here from test keys, not copied).

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

use super::*;
use crate::jwt::JwtLayer;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/jwt/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(path).unwrap()
}

/// With both crypto features on (`--all-features`), jsonwebtoken's signing needs a provider
/// chosen by hand.
fn provider() {
    let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
        &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER,
    );
}

fn rsa() -> EncodingKey {
    EncodingKey::from_rsa_pem(&fixture("rsa.key")).unwrap()
}

fn rsa_other() -> EncodingKey {
    EncodingKey::from_rsa_pem(&fixture("rsa-other.key")).unwrap()
}

fn ec() -> EncodingKey {
    EncodingKey::from_ec_pem(&fixture("ec256.key")).unwrap()
}

/// A signed token for `kid` (or none) with one hour to live.
fn token(key: &EncodingKey, alg: Algorithm, kid: Option<&str>) -> String {
    provider();
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    encode(&header, &json!({"sub": "u", "exp": exp}), key).unwrap()
}

/// The public JWK of `key` as a JSON object, with `members` merged over it.
#[allow(clippy::needless_pass_by_value)] // called with `json!` literals
fn jwk(key: &EncodingKey, alg: Algorithm, members: Value) -> Value {
    provider();
    let mut out = serde_json::to_value(Jwk::from_encoding_key(key, alg).unwrap()).unwrap();
    let object = out.as_object_mut().unwrap();
    for (name, value) in members.as_object().unwrap() {
        if value.is_null() {
            object.remove(name);
        } else {
            object.insert(name.clone(), value.clone());
        }
    }
    out
}

fn accepts(keys: &KeySet, token: &str) -> bool {
    let layer = JwtLayer::builder(keys.clone()).build().unwrap();
    layer.authenticator().validate(token).is_ok()
}

#[test]
fn keys_without_kid_each_verify_their_own_algorithm() {
    let hs = JwtKey::hmac([7; 32], Algorithm::HS256).unwrap();
    let rs = JwtKey::rsa_pem(fixture("rsa.pub.pem"), Algorithm::RS256).unwrap();
    let es = JwtKey::ec_pem(fixture("ec256.pub.pem"), Algorithm::ES256).unwrap();
    let keys = KeySet::new().with(hs).with(rs).with(es);
    keys.check().unwrap();
    assert_eq!(keys.len(), 3, "no key replaced another");
    let secret = EncodingKey::from_secret(&[7; 32]);
    assert!(accepts(&keys, &token(&secret, Algorithm::HS256, None)));
    assert!(accepts(&keys, &token(&rsa(), Algorithm::RS256, None)));
    assert!(accepts(&keys, &token(&ec(), Algorithm::ES256, None)));
    // Never against a key of another algorithm: the RSA key is not tried for PS256.
    assert!(!accepts(&keys, &token(&rsa(), Algorithm::PS256, None)));
}

#[test]
fn two_keys_no_token_can_tell_apart_are_a_configuration_error() {
    let a = || JwtKey::hmac([1; 32], Algorithm::HS256).unwrap();
    let b = || JwtKey::hmac([2; 32], Algorithm::HS256).unwrap();
    let clash = KeySet::new().with(a()).with(b());
    assert_eq!(
        clash.check(),
        Err(ConfigError::DuplicateKey {
            kid: None,
            algorithm: Algorithm::HS256
        })
    );
    assert_eq!(clash.len(), 1, "the second key is not added");
    assert!(matches!(
        JwtLayer::builder(clash).build(),
        Err(ConfigError::DuplicateKey { .. })
    ));
    let same_kid = KeySet::new()
        .with(a().with_kid("k"))
        .with(b().with_kid("k"));
    assert!(same_kid.check().is_err());
    let mut set = KeySet::new();
    set.insert(a().with_kid("k")).unwrap();
    assert!(set.insert(b().with_kid("k")).is_err());
    // The same kid for two algorithms is two keys.
    set.insert(
        JwtKey::hmac([3; 48], Algorithm::HS384)
            .unwrap()
            .with_kid("k"),
    )
    .unwrap();
    assert_eq!(set.len(), 2);
}

#[test]
fn a_kidless_token_is_tried_against_at_most_the_bound_of_its_algorithm() {
    let secrets: Vec<[u8; 32]> = (1..=5u8).map(|i| [i; 32]).collect();
    let set = |n: usize| -> KeySet {
        secrets[..n]
            .iter()
            .enumerate()
            .map(|(i, s)| {
                JwtKey::hmac(s, Algorithm::HS256)
                    .unwrap()
                    .with_kid(format!("k{i}"))
            })
            .collect()
    };
    let last = |n: usize| {
        token(
            &EncodingKey::from_secret(&secrets[n - 1]),
            Algorithm::HS256,
            None,
        )
    };
    assert!(accepts(
        &set(MAX_KIDLESS_CANDIDATES),
        &last(MAX_KIDLESS_CANDIDATES)
    ));
    assert!(
        !accepts(
            &set(MAX_KIDLESS_CANDIDATES + 1),
            &last(MAX_KIDLESS_CANDIDATES + 1)
        ),
        "past the bound, a token without kid is refused"
    );
}

/// JWKS documents as five providers publish them, and what must come of each.
#[test]
fn jwks_documents_shaped_like_real_providers() {
    let x5c = json!(["MIIC+DCCAeCgAwIBAgIJ"]);
    // Keycloak: a signing key, an encryption key (RSA-OAEP, use enc), x5c/x5t members.
    let keycloak = json!({"keys": [
        jwk(&rsa(), Algorithm::RS256, json!({"kid": "kc-sig", "use": "sig", "x5c": x5c, "x5t": "abc", "x5t#S256": "def"})),
        jwk(&rsa_other(), Algorithm::RS256, json!({"kid": "kc-enc", "use": "enc", "alg": "RSA-OAEP"})),
    ]});
    // Auth0: RS256 keys with x5c and thumbprints.
    let auth0 = json!({"keys": [
        jwk(&rsa(), Algorithm::RS256, json!({"kid": "a0-1", "use": "sig", "x5c": x5c, "x5t": "t1"})),
        jwk(&rsa_other(), Algorithm::RS256, json!({"kid": "a0-2", "use": "sig", "x5c": x5c, "x5t": "t2"})),
    ]});
    // Entra ID: RSA keys without `alg`, with `issuer` and x5t members.
    let entra = json!({"keys": [
        jwk(&rsa(), Algorithm::RS256, json!({"kid": "entra-1", "use": "sig", "alg": null, "x5t": "entra-1", "issuer": "https://login.microsoftonline.com/t/v2.0"})),
    ]});
    // Cognito: two RS256 keys, `use: sig`.
    let cognito = json!({"keys": [
        jwk(&rsa_other(), Algorithm::RS256, json!({"kid": "cg-1", "use": "sig"})),
        jwk(&rsa(), Algorithm::RS256, json!({"kid": "cg-2", "use": "sig"})),
    ]});
    // Google: RS256 keys plus an entry of a key type this crate does not know, and an EC key.
    let google = json!({"keys": [
        {"kty": "AKP", "alg": "ML-DSA-44", "kid": "pq", "pub": "AAAA"},
        jwk(&rsa(), Algorithm::RS256, json!({"kid": "g-1", "use": "sig"})),
        jwk(&ec(), Algorithm::ES256, json!({"kid": "g-ec", "use": "sig"})),
        {"kty": "EC", "crv": "secp256k1", "kid": "k1", "x": "AA", "y": "AA"},
        "not an object",
    ]});
    let parse = |doc: &Value| KeySet::from_jwks_json(doc.to_string()).unwrap();

    let set = parse(&keycloak);
    assert_eq!(set.len(), 1, "the encryption key is skipped: {set:?}");
    assert!(accepts(
        &set,
        &token(&rsa(), Algorithm::RS256, Some("kc-sig"))
    ));

    let set = parse(&auth0);
    assert!(accepts(
        &set,
        &token(&rsa_other(), Algorithm::RS256, Some("a0-2"))
    ));
    assert!(!accepts(
        &set,
        &token(&rsa(), Algorithm::RS256, Some("a0-2"))
    ));

    let set = parse(&entra);
    assert_eq!(
        set.len(),
        1,
        "an RSA key without alg serves RS256 by default"
    );
    assert!(accepts(
        &set,
        &token(&rsa(), Algorithm::RS256, Some("entra-1"))
    ));
    assert!(!accepts(
        &set,
        &token(&rsa(), Algorithm::PS256, Some("entra-1"))
    ));

    let set = parse(&cognito);
    assert!(accepts(
        &set,
        &token(&rsa(), Algorithm::RS256, Some("cg-2"))
    ));

    let set = parse(&google);
    assert_eq!(
        set.len(),
        2,
        "unknown kty and curve skipped, not fatal: {set:?}"
    );
    assert!(accepts(&set, &token(&ec(), Algorithm::ES256, Some("g-ec"))));

    // A document that is not a JWKS at all is an error, so a refresh keeps the last keys.
    assert!(KeySet::from_jwks_json(r#"{"keys": 5}"#).is_err());
    assert!(KeySet::from_jwks_json("[]").is_err());
}

#[test]
fn a_repeated_kid_keeps_the_first_entry_and_rsa_without_alg_serves_the_configured_algorithms() {
    let doc = json!({"keys": [
        jwk(&rsa(), Algorithm::RS256, json!({"kid": "dup"})),
        jwk(&rsa_other(), Algorithm::RS256, json!({"kid": "dup"})),
    ]});
    for _ in 0..3 {
        let set = KeySet::from_jwks_json(doc.to_string()).unwrap();
        assert_eq!(set.len(), 1);
        assert!(accepts(&set, &token(&rsa(), Algorithm::RS256, Some("dup"))));
        assert!(!accepts(
            &set,
            &token(&rsa_other(), Algorithm::RS256, Some("dup"))
        ));
    }
    let no_alg = json!({"keys": [jwk(&rsa(), Algorithm::RS256, json!({"kid": "r", "alg": null}))]});
    let options = JwksOptions {
        rsa_without_alg: vec![Algorithm::RS256, Algorithm::PS256],
        ..JwksOptions::default()
    };
    let set = parse_jwks(no_alg.to_string().as_bytes(), &options).unwrap();
    assert_eq!(set.len(), 2);
    assert!(accepts(&set, &token(&rsa(), Algorithm::PS256, Some("r"))));
    assert!(accepts(&set, &token(&rsa(), Algorithm::RS256, Some("r"))));
    let only_es = JwksOptions {
        algorithms: Some(vec![Algorithm::ES256]),
        ..JwksOptions::default()
    };
    let set = parse_jwks(no_alg.to_string().as_bytes(), &only_es).unwrap();
    assert!(set.is_empty(), "keys of algorithms not allowed are dropped");
}
