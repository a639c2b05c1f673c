//! The issuer: a token minted for any grant always verifies with the issuer's own layer and
//! carries what the grant said; refresh tokens round-trip and any text is parsed or refused.

use proptest::prelude::*;
use serde_json::json;
use serde_json::{Map, Value};
use tollgate::issuer::{Grant, IssueError, RefreshToken, SigningKey, TokenIssuer};
use tollgate::jwt::Algorithm;

use super::{config, config_scaled};

const SECRET: &[u8] = b"issuer-properties-0123456789abcdef-0123456789abcdef";

/// A scope token (RFC 6749 §3.3: visible ASCII but `"` and `\`, no space).
fn scope() -> impl Strategy<Value = String> {
    "[!#-\\[\\]-~]{1,10}"
}

fn extra_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<i64>().prop_map(Value::from),
        ".{0,8}".prop_map(Value::from),
        proptest::collection::vec(".{0,6}", 0..3).prop_map(Value::from),
    ]
}

proptest! {
    #![proptest_config(config_scaled(2))]

    /// Any subject, scopes, actor and custom claims: the minted token verifies with
    /// `jwt_layer()`, and the subject, scopes and actor read back.
    #[test]
    fn minted_tokens_verify_and_say_what_the_grant_said(
        subject in ".{0,24}",
        scopes in proptest::collection::vec(scope(), 0..5),
        actor in proptest::option::of("[a-z0-9-]{1,12}"),
        extra in proptest::collection::vec(
            (prop_oneof![
                "[a-z_]{1,8}",
                proptest::sample::select(&["roles", "permissions", "email", "name", "scp", "exp"][..])
                    .prop_map(str::to_owned),
            ], extra_value()),
            0..4,
        ),
    ) {
        let key = SigningKey::hmac("k1", SECRET, Algorithm::HS256).unwrap();
        let issuer = TokenIssuer::builder("https://issuer.test", key).build().unwrap();
        let mut grant = Grant::new(subject.clone()).scopes(scopes.clone());
        if let Some(actor) = &actor {
            grant = grant.actor(actor.clone());
        }
        let custom: Map<String, Value> = extra.into_iter().collect();
        let grant = match grant.clone().claims(&custom) {
            Ok(with_custom) => with_custom,
            // A reserved name is refused at grant time; mint without it.
            Err(_) => grant,
        };
        let token = issuer.mint(&grant).unwrap();
        let layer = issuer.jwt_layer().build().unwrap();
        let verified = layer.authenticator().validate(token.as_str());
        prop_assert!(verified.is_ok(), "{:?}", verified.err());
        let verified = verified.unwrap();
        prop_assert_eq!(verified.user().subject(), Some(subject.as_str()));
        prop_assert_eq!(verified.user().issuer(), Some("https://issuer.test"));
        let mut expected = scopes;
        expected.sort_unstable();
        expected.dedup();
        let mut got = verified.user().scopes().to_vec();
        got.sort_unstable();
        prop_assert_eq!(got, expected);
        prop_assert_eq!(verified.claims().azp.as_deref(), actor.as_deref());
    }
}

proptest! {
    #![proptest_config(config())]

    /// Any text as a refresh token: parsed or refused, never a panic; a parsed one prints
    /// back as exactly the text.
    #[test]
    fn refresh_tokens_parse_only_their_own_form(text in prop_oneof![
        ".{0,60}",
        "rt_[A-Za-z0-9_-]{43}",
        "rt_[A-Za-z0-9_+/=-]{42,44}",
    ]) {
        if let Some(token) = RefreshToken::parse(&text) {
            prop_assert_eq!(token.to_plaintext(), text);
        }
    }
}

fn issuer() -> TokenIssuer {
    let key = SigningKey::hmac("k1", SECRET, Algorithm::HS256).unwrap();
    TokenIssuer::builder("https://issuer.test", key)
        .build()
        .unwrap()
}

/// Found by `minted_tokens_verify_and_say_what_the_grant_said` (minimal input: a custom claim
/// `roles: 0`): the issuer minted a token its own layer refused as malformed, since the
/// default claims type reads `roles`, `permissions`, `email` and `name` with fixed types.
/// Such a claim of another type is now refused when the grant is made.
#[test]
fn custom_claims_the_layer_reads_must_have_its_types() {
    for bad in [
        json!({"roles": 0}),
        json!({"permissions": "write"}),
        json!({"email": ["a@b"]}),
        json!({"name": {"first": "a"}}),
    ] {
        let name = bad.as_object().unwrap().keys().next().unwrap().clone();
        let refused = Grant::new("alice").claims(&bad);
        assert!(refused.is_err(), "{bad} was accepted");
        assert!(refused.unwrap_err().to_string().contains(&name));
    }
    let fine = json!({"roles": ["admin"], "permissions": null, "email": "a@b", "name": "A"});
    let grant = Grant::new("alice").claims(&fine).unwrap();
    let issuer = issuer();
    let token = issuer.mint(&grant).unwrap();
    let layer = issuer.jwt_layer().build().unwrap();
    let verified = layer.authenticator().validate(token.as_str()).unwrap();
    assert_eq!(verified.claims().roles, Some(vec!["admin".to_owned()]));
}

/// Found by the same property: a custom `scp` claim on a grant without scopes became the
/// user's scopes (the layer reads `scp` when there is no `scope`), past `Grant::scopes`.
/// `scp` is now reserved like `scope`.
#[test]
fn a_custom_scp_claim_cannot_grant_scopes() {
    let refused = Grant::new("bob").claims(&json!({"scp": ["admin"]}));
    assert!(
        matches!(&refused, Err(IssueError::ReservedClaim { name }) if name == "scp"),
        "{refused:?}"
    );
}
