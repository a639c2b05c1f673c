//! The JWT layer through real axum and tonic servers on 127.0.0.1, with tokens made here.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, UNIX_EPOCH};

use axum::routing::get;
use axum::{Extension, Router};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use jsonwebtoken::crypto::CryptoProvider;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm as Alg, EncodingKey};
use serde_json::{Value, json};
use tollgate::clock::ManualClock;
use tollgate::identity::UserIdentity;
use tollgate::jwt::{
    Algorithm, Claims, FetchError, JwksDocument, JwksFetcher, JwksSource, JwtKey, JwtLayer, KeySet,
    RevocationList, StandardClaims,
};

use crate::support::{Answer, HttpClient, ProbeServer, call_whoami, serve_axum, serve_tonic};

const NOW: u64 = 1_700_000_000;
const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn init() {
    static ONCE: Once = Once::new();
    // jsonwebtoken's signing (test side only) needs one process-wide provider when the
    // features enable both backends.
    ONCE.call_once(|| {
        let _ = CryptoProvider::install_default(&jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER);
    });
}

fn clock() -> ManualClock {
    ManualClock::new(UNIX_EPOCH + Duration::from_secs(NOW))
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/jwt/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A token with exactly this header and these claims (raw JSON text), signed by `key`.
fn sign_raw(header: &str, claims: &str, key: &EncodingKey, alg: Alg) -> String {
    init();
    let message = format!("{}.{}", b64(header), b64(claims));
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), key, alg).unwrap();
    format!("{message}.{signature}")
}

fn sign(header: &Value, claims: &Value, key: &EncodingKey, alg: Alg) -> String {
    sign_raw(&header.to_string(), &claims.to_string(), key, alg)
}

/// Standard claims valid at `NOW`, with `extra` merged in (`null` removes a claim).
fn claims(extra: Value) -> Value {
    let mut out = json!({"sub": "alice", "iat": NOW, "exp": NOW + 600, "scope": "read write"});
    let Value::Object(extra) = extra else {
        panic!("claims take an object")
    };
    for (k, v) in extra {
        if v.is_null() {
            out.as_object_mut().unwrap().remove(&k);
        } else {
            out[k] = v;
        }
    }
    out
}

fn hs256() -> EncodingKey {
    EncodingKey::from_secret(SECRET)
}

fn hs_token(extra: Value) -> String {
    sign(
        &json!({"alg": "HS256", "kid": "hs"}),
        &claims(extra),
        &hs256(),
        Alg::HS256,
    )
}

fn hs_key() -> JwtKey {
    JwtKey::hmac(SECRET, Algorithm::HS256)
        .unwrap()
        .with_kid("hs")
}

async fn me(
    Extension(user): Extension<UserIdentity>,
    Extension(claims): Extension<Claims<StandardClaims>>,
) -> String {
    format!(
        "{}|{}|{}",
        user.subject().unwrap_or("-"),
        user.scopes().join(","),
        claims.email.as_deref().unwrap_or("-")
    )
}

async fn serve(layer: JwtLayer) -> HttpClient {
    let router = Router::new().route("/me", get(me)).route_layer(layer);
    HttpClient::new(serve_axum(router).await)
}

async fn bearer(client: &HttpClient, token: &str) -> Answer {
    client
        .get(
            "/me",
            &[("authorization", format!("Bearer {token}").as_bytes())],
        )
        .await
}

/// Asserts a 401 with the RFC 6750 challenge and the problem+json `code`.
#[track_caller]
fn assert_refused(answer: &Answer, code: &str) {
    assert_eq!(answer.status, 401, "{code}: {}", answer.text());
    assert_eq!(answer.json()["code"], code, "{}", answer.text());
    let challenge = answer.header("www-authenticate").unwrap();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(
        challenge.contains(r#"error="invalid_token""#),
        "{challenge}"
    );
}

fn layer_on(keys: impl Into<tollgate::jwt::KeySource>, clock: &ManualClock) -> JwtLayer {
    JwtLayer::builder(keys)
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap()
}

#[tokio::test]
async fn rfc7515_appendix_a1_verifies_with_its_key_and_is_expired_by_default() {
    // RFC 7515 A.1: the JWK has no `alg`, and this layer refuses to guess one for `oct` keys.
    let jwk = r#"{"kty":"oct","alg":"HS256","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}"#;
    let token = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let key = JwtKey::from_jwk_json(jwk).unwrap();

    let before_exp = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_300_819_300));
    let layer = JwtLayer::builder(key.clone())
        .issuer("joe")
        .clock(Arc::new(before_exp))
        .build()
        .unwrap();
    let ok = bearer(&serve(layer).await, token).await;
    assert_eq!((ok.status.as_u16(), ok.text()), (200, "-||-"));

    let today = JwtLayer::new(key).unwrap();
    let expired = bearer(&serve(today).await, token).await;
    assert_refused(&expired, "expired_credential");
    assert!(
        expired
            .header("www-authenticate")
            .unwrap()
            .contains(r#"error_description="The token has expired.""#)
    );
}

#[tokio::test]
async fn every_algorithm_through_axum() {
    init();
    let clock = clock();
    let rsa_priv = EncodingKey::from_rsa_pem(&fixture("rsa.key")).unwrap();
    let cases: Vec<(&str, Alg, EncodingKey, JwtKey)> = vec![
        (
            "HS256",
            Alg::HS256,
            EncodingKey::from_secret(SECRET),
            JwtKey::hmac(SECRET, Algorithm::HS256).unwrap(),
        ),
        (
            "HS384",
            Alg::HS384,
            EncodingKey::from_secret(SECRET),
            JwtKey::hmac(SECRET, Algorithm::HS384).unwrap(),
        ),
        (
            "HS512",
            Alg::HS512,
            EncodingKey::from_secret(SECRET),
            JwtKey::hmac(SECRET, Algorithm::HS512).unwrap(),
        ),
        (
            "RS256",
            Alg::RS256,
            rsa_priv.clone(),
            JwtKey::rsa_pem(fixture("rsa.pub.pem"), Algorithm::RS256).unwrap(),
        ),
        (
            "RS384",
            Alg::RS384,
            rsa_priv.clone(),
            JwtKey::rsa_pem(fixture("rsa.pub.pem"), Algorithm::RS384).unwrap(),
        ),
        (
            "RS512",
            Alg::RS512,
            rsa_priv.clone(),
            JwtKey::rsa_pem(fixture("rsa.pub.pem"), Algorithm::RS512).unwrap(),
        ),
        (
            "PS256",
            Alg::PS256,
            rsa_priv,
            JwtKey::rsa_pem(fixture("rsa.pub.pem"), Algorithm::PS256).unwrap(),
        ),
        (
            "ES256",
            Alg::ES256,
            EncodingKey::from_ec_pem(&fixture("ec256.key")).unwrap(),
            JwtKey::ec_pem(fixture("ec256.pub.pem"), Algorithm::ES256).unwrap(),
        ),
        (
            "ES384",
            Alg::ES384,
            EncodingKey::from_ec_pem(&fixture("ec384.key")).unwrap(),
            JwtKey::ec_pem(fixture("ec384.pub.pem"), Algorithm::ES384).unwrap(),
        ),
        (
            "EdDSA",
            Alg::EdDSA,
            EncodingKey::from_ed_pem(&fixture("ed25519.key")).unwrap(),
            JwtKey::ed_pem(fixture("ed25519.pub.pem")).unwrap(),
        ),
    ];
    let keys: KeySet = cases
        .iter()
        .map(|(kid, _, _, key)| key.clone().with_kid(*kid))
        .collect();
    let client = serve(layer_on(keys, &clock)).await;
    for (kid, alg, signing, _) in &cases {
        let token = sign(
            &json!({"alg": kid, "kid": kid, "typ": "JWT"}),
            &claims(json!({"sub": kid, "email": "a@example.com"})),
            signing,
            *alg,
        );
        let answer = bearer(&client, &token).await;
        assert_eq!(answer.status, 200, "{kid}: {}", answer.text());
        assert_eq!(answer.text(), format!("{kid}|read,write|a@example.com"));

        // The same signature naming another key of the set (another algorithm): refused.
        let other = if *kid == "HS256" { "EdDSA" } else { "HS256" };
        let forged = sign(
            &json!({"alg": kid, "kid": other}),
            &claims(json!({})),
            signing,
            *alg,
        );
        assert_refused(&bearer(&client, &forged).await, "invalid_credential");
    }
}

#[tokio::test]
async fn expiry_leeway_and_not_before() {
    let clock = clock();
    let client = serve(layer_on(hs_key(), &clock)).await;
    let within_leeway = bearer(&client, &hs_token(json!({"exp": NOW - 30}))).await;
    assert_eq!(within_leeway.status, 200);
    assert_refused(
        &bearer(&client, &hs_token(json!({"exp": NOW - 61}))).await,
        "expired_credential",
    );
    assert_refused(
        &bearer(&client, &hs_token(json!({"exp": null}))).await,
        "invalid_credential",
    );
    assert_refused(
        &bearer(&client, &hs_token(json!({"nbf": NOW + 120}))).await,
        "invalid_credential",
    );
    assert_eq!(
        bearer(&client, &hs_token(json!({"nbf": NOW + 30})))
            .await
            .status,
        200
    );
    assert_refused(
        &bearer(&client, &hs_token(json!({"exp": "never"}))).await,
        "malformed_credential",
    );
    assert_refused(
        &bearer(&client, &hs_token(json!({"exp": -5}))).await,
        "malformed_credential",
    );
    let overflow = sign_raw(
        r#"{"alg":"HS256","kid":"hs"}"#,
        r#"{"sub":"a","exp":1e400}"#,
        &hs256(),
        Alg::HS256,
    );
    assert_refused(&bearer(&client, &overflow).await, "malformed_credential");
    let duplicate = sign_raw(
        r#"{"alg":"HS256","kid":"hs"}"#,
        &format!(r#"{{"sub":"a","exp":{},"exp":{}}}"#, NOW - 1000, NOW + 600),
        &hs256(),
        Alg::HS256,
    );
    assert_refused(&bearer(&client, &duplicate).await, "malformed_credential");
}

#[tokio::test]
async fn issuer_and_audience_any_of() {
    let clock = clock();
    let layer = JwtLayer::builder(hs_key())
        .issuer("https://a.example")
        .issuer("https://b.example")
        .audience("api")
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let client = serve(layer).await;
    let ok = [
        json!({"iss": "https://a.example", "aud": "api"}),
        json!({"iss": "https://b.example", "aud": ["other", "api"]}),
    ];
    for extra in ok {
        assert_eq!(
            bearer(&client, &hs_token(extra.clone())).await.status,
            200,
            "{extra}"
        );
    }
    let refused = [
        (
            json!({"iss": "https://evil.example", "aud": "api"}),
            "invalid_credential",
        ),
        (json!({"aud": "api"}), "invalid_credential"),
        (json!({"iss": 7, "aud": "api"}), "malformed_credential"),
        (
            json!({"iss": ["https://a.example"], "aud": "api"}),
            "malformed_credential",
        ),
        (json!({"iss": "https://a.example"}), "invalid_credential"),
        (
            json!({"iss": "https://a.example", "aud": "web"}),
            "invalid_credential",
        ),
        (
            json!({"iss": "https://a.example", "aud": ["web", "mobile"]}),
            "invalid_credential",
        ),
        (
            json!({"iss": "https://a.example", "aud": 1}),
            "malformed_credential",
        ),
    ];
    for (extra, code) in refused {
        assert_refused(&bearer(&client, &hs_token(extra)).await, code);
    }
}

#[tokio::test]
async fn alg_none_in_any_spelling_and_algorithm_confusion() {
    let clock = clock();
    let rsa_pub = fixture("rsa.pub.pem");
    let keys = KeySet::new().with(hs_key()).with(
        JwtKey::rsa_pem(&rsa_pub, Algorithm::RS256)
            .unwrap()
            .with_kid("rsa"),
    );
    let client = serve(layer_on(keys, &clock)).await;
    let payload = b64(claims(json!({})).to_string());
    for alg in ["none", "None", "NONE", "nOnE"] {
        for kid in ["hs", "rsa"] {
            let header = b64(json!({"alg": alg, "kid": kid}).to_string());
            for signature in ["", "AAAA"] {
                let token = format!("{header}.{payload}.{signature}");
                assert_refused(&bearer(&client, &token).await, "invalid_credential");
            }
        }
    }
    // HMAC keyed with the RSA public key's PEM, DER-of-PEM, whatever: the key is pinned to RS256.
    let confused = sign(
        &json!({"alg": "HS256", "kid": "rsa"}),
        &claims(json!({})),
        &EncodingKey::from_secret(&rsa_pub),
        Alg::HS256,
    );
    assert_refused(&bearer(&client, &confused).await, "invalid_credential");
    // A valid RS256 signature under a header claiming another RSA algorithm: the key is
    // pinned, so the header's `alg` must match it exactly.
    let rsa_private = EncodingKey::from_rsa_pem(&fixture("rsa.key")).unwrap();
    for alg in ["RS384", "PS256", "rs256"] {
        let relabelled = sign(
            &json!({"alg": alg, "kid": "rsa"}),
            &claims(json!({})),
            &rsa_private,
            Alg::RS256,
        );
        let answer = bearer(&client, &relabelled).await;
        assert_refused(&answer, "invalid_credential");
        assert_eq!(
            answer.json()["detail"],
            "The token's algorithm does not match its key."
        );
    }
    let honest = sign(
        &json!({"alg": "RS256", "kid": "rsa"}),
        &claims(json!({})),
        &rsa_private,
        Alg::RS256,
    );
    assert_eq!(bearer(&client, &honest).await.status, 200);
    // And an RS256 header on the HMAC key.
    let rs_on_hs = sign(
        &json!({"alg": "RS256", "kid": "hs"}),
        &claims(json!({})),
        &EncodingKey::from_rsa_pem(&fixture("rsa.key")).unwrap(),
        Alg::RS256,
    );
    assert_refused(&bearer(&client, &rs_on_hs).await, "invalid_credential");
}

#[tokio::test]
async fn signature_stripped_tampered_or_from_another_key() {
    let clock = clock();
    let keys = JwtKey::rsa_pem(fixture("rsa.pub.pem"), Algorithm::RS256)
        .unwrap()
        .with_kid("rsa");
    let client = serve(layer_on(keys, &clock)).await;
    let header = json!({"alg": "RS256", "kid": "rsa"});
    let good = sign(
        &header,
        &claims(json!({})),
        &EncodingKey::from_rsa_pem(&fixture("rsa.key")).unwrap(),
        Alg::RS256,
    );
    assert_eq!(bearer(&client, &good).await.status, 200);

    let (message, _) = good.rsplit_once('.').unwrap();
    assert_refused(
        &bearer(&client, &format!("{message}.")).await,
        "invalid_credential",
    );
    let other = sign(
        &header,
        &claims(json!({})),
        &EncodingKey::from_rsa_pem(&fixture("rsa-other.key")).unwrap(),
        Alg::RS256,
    );
    assert_refused(&bearer(&client, &other).await, "invalid_credential");
    let (_, signature) = good.rsplit_once('.').unwrap();
    let tampered = format!(
        "{}.{}.{signature}",
        b64(header.to_string()),
        b64(claims(json!({"sub": "mallory"})).to_string())
    );
    assert_refused(&bearer(&client, &tampered).await, "invalid_credential");
    let unknown_kid = sign(
        &json!({"alg": "HS256", "kid": "who"}),
        &claims(json!({})),
        &hs256(),
        Alg::HS256,
    );
    let answer = bearer(&client, &unknown_kid).await;
    assert_refused(&answer, "invalid_credential");
    assert_eq!(
        answer.json()["detail"],
        "The token was signed with an unknown key."
    );
}

/// HMAC tokens of each size, through the layer's own HMAC (prepared from the key, tag on the
/// stack): signed by jsonwebtoken, accepted; stripped, cut short, lengthened, one bit off, a
/// non-canonical last character, another secret's, or moved onto other claims, refused.
#[tokio::test]
async fn hmac_signatures_of_each_size_are_checked_exactly() {
    let clock = clock();
    for (algorithm, alg) in [
        (Algorithm::HS256, Alg::HS256),
        (Algorithm::HS384, Alg::HS384),
        (Algorithm::HS512, Alg::HS512),
    ] {
        let client = serve(layer_on(JwtKey::hmac(SECRET, algorithm).unwrap(), &clock)).await;
        let header = json!({"alg": format!("{alg:?}")});
        let good = sign(&header, &claims(json!({})), &hs256(), alg);
        assert_eq!(bearer(&client, &good).await.status, 200, "{alg:?}");

        let (message, signature) = good.rsplit_once('.').unwrap();
        let mut flipped = signature.as_bytes().to_vec();
        flipped[3] = if flipped[3] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        // The last character carries spare bits that must be zero: one with them set decodes
        // to the same bytes in a lenient decoder.
        // Its last character, with a spare bit set: the same bytes to a lenient decoder.
        // (HS384's 48 bytes fill 64 characters exactly: no spare bits.)
        let spare = (alg != Alg::HS384).then(|| {
            let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let index = alphabet.find(signature.chars().last().unwrap()).unwrap();
            let next = alphabet.as_bytes()[index | 1] as char;
            format!("{}{next}", &signature[..signature.len() - 1])
        });
        let other = sign(
            &header,
            &claims(json!({})),
            &EncodingKey::from_secret(b"another secret, as long as the first one, or longer!!"),
            alg,
        );
        let moved = format!(
            "{}.{}.{signature}",
            b64(header.to_string()),
            b64(claims(json!({"sub": "mallory"})).to_string())
        );
        let mut refused = vec![
            format!("{message}."),
            format!("{message}.{}", &signature[..signature.len() - 1]),
            format!("{message}.{signature}A"),
            format!("{message}.{}", &signature[..signature.len() - 4]),
            format!("{message}.{flipped}"),
            other,
            moved,
        ];
        refused.extend(spare.map(|s| format!("{message}.{s}")));
        for token in &refused {
            let answer = bearer(&client, token).await;
            assert_eq!(answer.status, 401, "{alg:?} {token}");
            // Bytes that are not base64url are malformed, a wrong signature invalid.
            let code = answer.json()["code"].as_str().unwrap().to_owned();
            assert!(
                ["invalid_credential", "malformed_credential"].contains(&code.as_str()),
                "{alg:?} {token}: {code}"
            );
        }
    }
}

#[tokio::test]
async fn embedded_jwk_and_jku_are_never_followed_and_crit_is_refused() {
    init();
    let clock = clock();
    let (jku_addr, jku_fetches) = counting_server(|| (200, "{\"keys\":[]}".to_owned(), None)).await;
    let rsa_key = EncodingKey::from_rsa_pem(&fixture("rsa.key")).unwrap();
    let attacker = EncodingKey::from_rsa_pem(&fixture("rsa-other.key")).unwrap();
    let attacker_jwk =
        serde_json::to_value(Jwk::from_encoding_key(&attacker, Alg::RS256).unwrap()).unwrap();
    let keys = JwtKey::rsa_pem(fixture("rsa.pub.pem"), Algorithm::RS256)
        .unwrap()
        .with_kid("rsa");
    let client = serve(layer_on(keys, &clock)).await;
    let jku = format!("http://{jku_addr}/jwks");

    for header in [
        json!({"alg": "RS256", "kid": "rsa", "jwk": attacker_jwk}),
        json!({"alg": "RS256", "jwk": attacker_jwk}),
        json!({"alg": "RS256", "kid": "evil", "jku": jku}),
        json!({"alg": "RS256", "kid": "rsa", "x5u": jku}),
    ] {
        let token = sign(&header, &claims(json!({})), &attacker, Alg::RS256);
        assert_refused(&bearer(&client, &token).await, "invalid_credential");
    }
    // Signed by the real key, the extra members are harmless and still not followed.
    let legit = sign(
        &json!({"alg": "RS256", "kid": "rsa", "jku": jku}),
        &claims(json!({})),
        &rsa_key,
        Alg::RS256,
    );
    assert_eq!(bearer(&client, &legit).await.status, 200);
    assert_eq!(jku_fetches.load(Ordering::SeqCst), 0);

    for crit in [json!(["exp"]), json!(["b64"]), json!([])] {
        let token = sign(
            &json!({"alg": "RS256", "kid": "rsa", "crit": crit}),
            &claims(json!({})),
            &rsa_key,
            Alg::RS256,
        );
        assert_refused(&bearer(&client, &token).await, "invalid_credential");
    }
}

#[tokio::test]
async fn malformed_tokens_and_headers() {
    let clock = clock();
    let layer = JwtLayer::builder(hs_key())
        .max_token_len(4096)
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let client = serve(layer).await;
    let good = hs_token(json!({}));
    let (header, rest) = good.split_once('.').unwrap();
    let (payload, signature) = rest.split_once('.').unwrap();
    let malformed = [
        "abc".to_owned(),
        format!("{header}.{payload}"),
        format!("{header}.{payload}.{signature}.{signature}"),
        format!("{header}.{payload}.{signature}.x.y"),
        format!("{header}.{}.{}.{signature}", &payload[..8], &payload[8..]),
        format!("{header}..{signature}"),
        format!(".{payload}.{signature}"),
        "..".to_owned(),
        format!("{header}a.{payload}.{signature}"),
        format!("{}.{payload}.{signature}", b64("[]")),
        format!(
            "{}.{payload}.{signature}",
            b64("{\"alg\":\"HS256\",\"alg\":\"HS256\"}")
        ),
        format!("{}.{payload}.{signature}", b64("not json")),
        format!("{}.{payload}.{signature}", b64("{\"kid\":\"hs\"}")),
        format!("{header}.{}.{signature}", b64("[1,2,3]")),
    ];
    for token in &malformed {
        let answer = bearer(&client, token).await;
        assert_eq!(answer.status, 401, "{token}: {}", answer.text());
        assert!(
            ["malformed_credential", "invalid_credential"]
                .contains(&answer.json()["code"].as_str().unwrap()),
            "{token}: {}",
            answer.text()
        );
    }

    let oversized = format!("{good}{}", "A".repeat(4096));
    assert_refused(&bearer(&client, &oversized).await, "malformed_credential");

    for (value, status) in [
        (format!("bearer {good}"), 200),
        (format!("BEARER {good}"), 200),
        (format!("Bearer {good} {good}"), 400),
        (format!("Bearer {good},x"), 400),
        ("Bearer".to_owned(), 400),
        (format!("Basic {good}"), 401),
    ] {
        let answer = client
            .get("/me", &[("authorization", value.as_bytes())])
            .await;
        assert_eq!(answer.status, status, "{value}: {}", answer.text());
        if status == 400 {
            assert_eq!(answer.json()["code"], "invalid_request");
            assert!(
                answer
                    .header("www-authenticate")
                    .unwrap()
                    .contains(r#"error="invalid_request""#)
            );
        }
    }
    let two = client
        .send(
            client
                .request(http::Method::GET, "/me")
                .header("authorization", format!("Bearer {good}"))
                .header("authorization", format!("Bearer {good}"))
                .body(Full::default())
                .unwrap(),
        )
        .await;
    assert_eq!(two.status, 400);
    let missing = client.get("/me", &[]).await;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.header("www-authenticate"), Some("Bearer"));
}

/// RFC 7515 §5.2 / RFC 7519 §7.2: the header and the payload are UTF-8 JSON. Invalid UTF-8
/// inside a member no claims type names (which a JSON parser skips unread) is still refused,
/// though the token is signed with the right key.
#[tokio::test]
async fn invalid_utf8_in_an_unknown_member_is_refused() {
    init();
    let clock = clock();
    let client = serve(layer_on(hs_key(), &clock)).await;
    let signed = |header: &[u8], payload: &[u8]| {
        let message = format!("{}.{}", b64(header), b64(payload));
        let signature =
            jsonwebtoken::crypto::sign(message.as_bytes(), &hs256(), Alg::HS256).unwrap();
        format!("{message}.{signature}")
    };
    let header = br#"{"alg":"HS256","kid":"hs"}"#.to_vec();
    let payload = format!(r#"{{"sub":"alice","exp":{},"note":"#, NOW + 600).into_bytes();
    let with = |prefix: &[u8], bytes: &[u8]| [prefix, b"\"", bytes, b"\"}"].concat();
    // The control: the same token with valid UTF-8 passes.
    let good = signed(&header, &with(&payload, "caf\u{e9}".as_bytes()));
    assert_eq!(bearer(&client, &good).await.status, 200);
    for bad in [&b"caf\xe9"[..], b"\xff\xfe", b"\xed\xa0\x80"] {
        let token = signed(&header, &with(&payload, bad));
        assert_refused(&bearer(&client, &token).await, "malformed_credential");
        let header = with(br#"{"alg":"HS256","kid":"hs","x":"#, bad);
        let claims = claims(json!({})).to_string();
        let token = signed(&header, claims.as_bytes());
        assert_refused(&bearer(&client, &token).await, "malformed_credential");
    }
}

#[tokio::test]
async fn revoked_jti_and_cache_hits_still_check_expiry_and_revocation() {
    let clock = clock();
    let revoked = RevocationList::with_clock(Arc::new(clock.clone()));
    let layer = JwtLayer::builder(hs_key())
        .clock(Arc::new(clock.clone()))
        .revocation(revoked.clone())
        .build()
        .unwrap();
    let client = serve(layer).await;

    let first = hs_token(json!({"jti": "t-1"}));
    let second = hs_token(json!({"jti": "t-2", "exp": NOW + 60}));
    assert_eq!(bearer(&client, &first).await.status, 200);
    assert_eq!(bearer(&client, &first).await.status, 200, "cache hit");
    assert_eq!(bearer(&client, &second).await.status, 200);

    revoked.revoke("t-1", UNIX_EPOCH + Duration::from_secs(NOW + 600));
    assert_refused(&bearer(&client, &first).await, "revoked_credential");
    assert_eq!(bearer(&client, &second).await.status, 200);

    clock.advance(Duration::from_secs(121)); // past `second`'s exp + leeway
    assert_refused(&bearer(&client, &second).await, "expired_credential");
    let fresh_revoked = hs_token(json!({"jti": "t-1", "iat": NOW + 100}));
    assert_refused(&bearer(&client, &fresh_revoked).await, "revoked_credential");
}

/// Review f2: a `jti` revoked until the token's `exp` (as the README shows) stays refused
/// through the whole leeway after `exp`, whatever leeway the layer has, until the layer's own
/// expiry check refuses the token.
#[tokio::test]
async fn a_revoked_jti_stays_refused_through_the_leeway_after_exp() {
    for leeway in [60, 300] {
        let clock = clock();
        let revoked = RevocationList::with_clock(Arc::new(clock.clone()));
        let layer = JwtLayer::builder(hs_key())
            .clock(Arc::new(clock.clone()))
            .leeway(Duration::from_secs(leeway))
            .revocation(revoked.clone())
            .build()
            .unwrap();
        let client = serve(layer).await;
        let token = hs_token(json!({"jti": "t-1"}));
        let exp = UNIX_EPOCH + Duration::from_secs(NOW + 600);
        assert_eq!(bearer(&client, &token).await.status, 200);
        revoked.revoke("t-1", exp);
        assert_refused(&bearer(&client, &token).await, "revoked_credential");
        for after_exp in [0, 1, leeway / 2, leeway - 1] {
            clock.set(exp + Duration::from_secs(after_exp));
            assert_refused(&bearer(&client, &token).await, "revoked_credential");
        }
        clock.set(exp + Duration::from_secs(leeway));
        assert_refused(&bearer(&client, &token).await, "expired_credential");
    }
}

#[tokio::test]
async fn optional_mode_and_custom_claims() {
    #[derive(serde::Deserialize)]
    struct Tenant {
        tenant: String,
    }
    async fn tenant(claims: Option<Extension<Claims<Tenant>>>) -> String {
        claims.map_or_else(|| "anonymous".to_owned(), |c| c.tenant.clone())
    }
    let clock = clock();
    let layer = JwtLayer::builder(hs_key())
        .claims::<Tenant>()
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap()
        .optional();
    let client =
        HttpClient::new(serve_axum(Router::new().route("/t", get(tenant)).layer(layer)).await);
    let anonymous = client.get("/t", &[]).await;
    assert_eq!(
        (anonymous.status.as_u16(), anonymous.text()),
        (200, "anonymous")
    );
    let token = hs_token(json!({"tenant": "acme"}));
    let ok = client
        .get(
            "/t",
            &[("authorization", format!("Bearer {token}").as_bytes())],
        )
        .await;
    assert_eq!((ok.status.as_u16(), ok.text()), (200, "acme"));
    let bad = client
        .get("/t", &[("authorization", b"Bearer a.b.c")])
        .await;
    assert_eq!(bad.status, 401, "optional mode still refuses a bad token");
    let wrong_type = hs_token(json!({"tenant": 5}));
    let wrong = client
        .get(
            "/t",
            &[("authorization", format!("Bearer {wrong_type}").as_bytes())],
        )
        .await;
    assert_eq!(wrong.status, 401);
}

/// Review f8: a client-chosen `content-type: application/grpc` does not change what a plain
/// HTTP/1.1 client is told (401, `no-store`, the challenge); a real gRPC request (HTTP/2)
/// gets the trailers-only form, which carries `no-store` too.
#[tokio::test]
async fn a_client_chosen_grpc_content_type_changes_nothing_for_http_clients() {
    let clock = clock();
    let router = Router::new()
        .route("/me", get(me))
        .route_layer(layer_on(hs_key(), &clock));
    let addr = serve_axum(router).await;
    let http1 = HttpClient::new(addr);
    let expired = format!("Bearer {}", hs_token(json!({"exp": NOW - 3600})));
    for content_type in ["application/grpc", "application/grpc+proto"] {
        let missing = http1
            .get("/me", &[("content-type", content_type.as_bytes())])
            .await;
        assert_eq!(missing.status, 401, "{content_type}");
        assert_eq!(missing.header("cache-control"), Some("no-store"));
        assert_eq!(missing.header("www-authenticate"), Some("Bearer"));
        assert_eq!(missing.header("grpc-status"), None);
        let answer = http1
            .get(
                "/me",
                &[
                    ("content-type", content_type.as_bytes()),
                    ("authorization", expired.as_bytes()),
                ],
            )
            .await;
        assert_refused(&answer, "expired_credential");
        assert_eq!(answer.header("cache-control"), Some("no-store"));
    }

    // A real gRPC request: HTTP/2, `te: trailers`.
    let http2: hyper_util::client::legacy::Client<_, Full<Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .http2_only(true)
            .build_http();
    let request = http::Request::post(format!("http://{addr}/me"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("authorization", &expired)
        .body(Full::default())
        .unwrap();
    let response = http2.request(request).await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["grpc-status"], "16");
    assert_eq!(response.headers()["cache-control"], "no-store");
}

#[tokio::test]
async fn grpc_rejections_are_unauthenticated_in_a_real_tonic_client() {
    let clock = clock();
    let probe = ProbeServer::new(|extensions| {
        let user = extensions.get::<UserIdentity>().unwrap();
        format!(
            "{}:{}",
            user.subject().unwrap_or("-"),
            user.has_scope("write")
        )
    });
    let addr = serve_tonic(layer_on(hs_key(), &clock), probe).await;
    let token = hs_token(json!({}));
    let ok = call_whoami(addr, &[("authorization", &format!("Bearer {token}"))]).await;
    assert_eq!(ok.unwrap(), "alice:true");

    let expired = hs_token(json!({"exp": NOW - 3600}));
    for metadata in [
        vec![("authorization", format!("Bearer {expired}"))],
        vec![("authorization", "Bearer a.b.c".to_owned())],
        vec![],
    ] {
        let metadata: Vec<(&'static str, &str)> =
            metadata.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let status = call_whoami(addr, &metadata).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
        assert!(!status.message().contains(&expired));
    }
}

/// Review #16: a malformed request (here two bearer tokens folded into one header) is gRPC
/// 3 `INVALID_ARGUMENT`, as its HTTP form is 400 `invalid_request`, not `UNAUTHENTICATED`.
#[tokio::test]
async fn an_invalid_request_is_invalid_argument_in_a_real_tonic_client() {
    let clock = clock();
    let probe = ProbeServer::new(|_| "reached".to_owned());
    let addr = serve_tonic(layer_on(hs_key(), &clock), probe).await;
    let token = hs_token(json!({}));
    let folded = format!("Bearer {token}, Bearer {token}");
    let status = call_whoami(addr, &[("authorization", &folded)])
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    let ok = call_whoami(addr, &[("authorization", &format!("Bearer {token}"))]).await;
    assert_eq!(ok.unwrap(), "reached");
}

// ---------------------------------------------------------------------------------------
// JWKS against a real local HTTP server that counts fetches.
// ---------------------------------------------------------------------------------------

type Reply = (u16, String, Option<u64>);

/// Serves `/jwks` with whatever `reply` says now, counting requests.
async fn counting_server(
    reply: impl Fn() -> Reply + Send + Sync + 'static,
) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&count);
    let reply = Arc::new(reply);
    let router = Router::new().route(
        "/jwks",
        get(move || {
            let counter = Arc::clone(&counter);
            let reply = Arc::clone(&reply);
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                let (status, body, max_age) = reply();
                let mut response = http::Response::builder()
                    .status(status)
                    .header("content-type", "application/json");
                if let Some(max_age) = max_age {
                    response =
                        response.header("cache-control", format!("public, max-age={max_age}"));
                }
                response.body(axum::body::Body::from(body)).unwrap()
            }
        }),
    );
    (serve_axum(router).await, count)
}

/// A JWKS fetcher built on hyper-util, as a user would write one.
struct HyperFetcher {
    client: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        Full<Bytes>,
    >,
    uri: http::Uri,
}

impl JwksFetcher for HyperFetcher {
    type Future = Pin<Box<dyn Future<Output = Result<JwksDocument, FetchError>> + Send>>;

    fn fetch(&self) -> Self::Future {
        let client = self.client.clone();
        let uri = self.uri.clone();
        Box::pin(async move {
            let response = client.get(uri).await.map_err(FetchError::new)?;
            if !response.status().is_success() {
                return Err(FetchError::new(format!("status {}", response.status())));
            }
            let (parts, body) = response.into_parts();
            let body = body.collect().await.map_err(FetchError::new)?.to_bytes();
            Ok(JwksDocument::from_response(&parts.headers, body))
        })
    }
}

fn fetcher(addr: std::net::SocketAddr) -> HyperFetcher {
    HyperFetcher {
        client: hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http(),
        uri: format!("http://{addr}/jwks").parse().unwrap(),
    }
}

fn rsa_jwk(private: &str, kid: &str) -> Value {
    init();
    let key = EncodingKey::from_rsa_pem(&fixture(private)).unwrap();
    let mut jwk = serde_json::to_value(Jwk::from_encoding_key(&key, Alg::RS256).unwrap()).unwrap();
    jwk["kid"] = json!(kid);
    jwk["alg"] = json!("RS256");
    jwk["use"] = json!("sig");
    jwk
}

fn rs_token(private: &str, kid: &str) -> String {
    sign(
        &json!({"alg": "RS256", "kid": kid}),
        &claims(json!({})),
        &EncodingKey::from_rsa_pem(&fixture(private)).unwrap(),
        Alg::RS256,
    )
}

/// What the test JWKS server answers, changed by the test as it goes.
#[derive(Clone)]
struct Provider(Arc<Mutex<Reply>>);

impl Provider {
    fn serve_keys(&self, keys: &[Value], max_age: Option<u64>) {
        *self.0.lock().unwrap() = (200, json!({ "keys": keys }).to_string(), max_age);
    }

    fn fail(&self) {
        *self.0.lock().unwrap() = (500, "down".to_owned(), None);
    }
}

async fn provider() -> (Provider, std::net::SocketAddr, Arc<AtomicUsize>) {
    let provider = Provider(Arc::new(Mutex::new((
        200,
        "{\"keys\":[]}".to_owned(),
        None,
    ))));
    let replies = provider.clone();
    let (addr, count) = counting_server(move || replies.0.lock().unwrap().clone()).await;
    (provider, addr, count)
}

#[tokio::test]
async fn jwks_rotation_forged_kid_flood_and_provider_down() {
    let clock = clock();
    let (provider, addr, fetches) = provider().await;
    let k1 = rsa_jwk("rsa.key", "k1");
    let k2 = rsa_jwk("rsa-other.key", "k2");
    provider.serve_keys(std::slice::from_ref(&k1), Some(300));

    let source = JwksSource::builder(fetcher(addr))
        .unknown_kid_cooldown(Duration::from_secs(30))
        .clock(Arc::new(clock.clone()))
        .build();
    assert_eq!(source.refresh().await.unwrap(), Duration::from_secs(300));
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    let client = serve(layer_on(source.clone(), &clock)).await;
    assert_eq!(
        bearer(&client, &rs_token("rsa.key", "k1")).await.status,
        200
    );

    // Rotation: k2 appears at the provider; the first k2 token triggers one re-fetch.
    provider.serve_keys(&[k1.clone(), k2.clone()], Some(300));
    assert_eq!(
        bearer(&client, &rs_token("rsa-other.key", "k2"))
            .await
            .status,
        200
    );
    assert_eq!(fetches.load(Ordering::SeqCst), 2);

    // A flood of forged kids within the cooldown: no fetch at all.
    let mut flood = tokio::task::JoinSet::new();
    for i in 0..40 {
        let client = client.clone();
        let token = rs_token("rsa.key", &format!("forged-{i}"));
        flood.spawn(async move { bearer(&client, &token).await.status });
    }
    while let Some(status) = flood.join_next().await {
        assert_eq!(status.unwrap(), 401);
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 2);

    // After the cooldown, a concurrent flood costs exactly one fetch.
    clock.advance(Duration::from_secs(31));
    let mut flood = tokio::task::JoinSet::new();
    for i in 0..40 {
        let client = client.clone();
        let token = rs_token("rsa.key", &format!("forged-again-{i}"));
        flood.spawn(async move { bearer(&client, &token).await.status });
    }
    while let Some(status) = flood.join_next().await {
        assert_eq!(status.unwrap(), 401);
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 3);

    // Provider down: refresh fails, the last good keys keep working.
    provider.fail();
    clock.advance(Duration::from_secs(31));
    assert!(source.refresh().await.is_err());
    assert_eq!(
        bearer(&client, &rs_token("rsa.key", "k1")).await.status,
        200
    );
    assert_eq!(
        bearer(&client, &rs_token("rsa-other.key", "k3"))
            .await
            .status,
        401
    );
    assert_eq!(
        bearer(&client, &rs_token("rsa-other.key", "k2"))
            .await
            .status,
        200
    );
    assert_eq!(source.keys().len(), 2);
}

/// Review f6: a JWKS document is public, so a symmetric (`kty: oct`) key in a fetched one
/// is no secret: it is skipped, and a token signed with it is refused. The provider's
/// asymmetric keys still work.
#[tokio::test]
async fn a_fetched_jwks_cannot_bring_a_symmetric_key() {
    let clock = clock();
    let (provider, addr, _) = provider().await;
    let oct = json!({"kty": "oct", "kid": "hs", "alg": "HS256", "k": b64(SECRET)});
    provider.serve_keys(&[oct.clone(), rsa_jwk("rsa.key", "k1")], None);
    let source = JwksSource::builder(fetcher(addr))
        .clock(Arc::new(clock.clone()))
        .build();
    source.refresh().await.unwrap();
    assert_eq!(source.keys().len(), 1, "the oct key is skipped");
    let client = serve(layer_on(source, &clock)).await;
    assert_eq!(
        bearer(&client, &rs_token("rsa.key", "k1")).await.status,
        200
    );
    // Minted by anyone who read the JWKS: same kid, the published secret.
    assert_refused(
        &bearer(&client, &hs_token(json!({}))).await,
        "invalid_credential",
    );
    // Configured explicitly, the same key is trusted.
    let explicit = JwtKey::from_jwk_json(oct.to_string()).unwrap();
    let client = serve(layer_on(explicit, &clock)).await;
    assert_eq!(bearer(&client, &hs_token(json!({}))).await.status, 200);
}

/// Review f9: a JWKS endpoint that never answers (and a fetcher with no timeout of its own)
/// does not hold a request naming an unknown `kid`: the re-fetch is cut short by the source's
/// own timeout and the request is refused as `invalid_token`. The second request, within the
/// cooldown, is refused at once.
#[tokio::test]
async fn an_unknown_kid_refetch_that_never_answers_is_cut_short() {
    let clock = clock();
    let never = Router::new().route("/jwks", get(std::future::pending::<String>));
    let source = JwksSource::builder(fetcher(serve_axum(never).await))
        .unknown_kid_timeout(Duration::from_millis(200))
        .clock(Arc::new(clock.clone()))
        .build();
    let client = serve(layer_on(source, &clock)).await;
    for kid in ["k1", "k2"] {
        let answer = tokio::time::timeout(
            Duration::from_secs(30),
            bearer(&client, &rs_token("rsa.key", kid)),
        )
        .await
        .expect("the request was never answered");
        assert_refused(&answer, "invalid_credential");
    }
}

#[tokio::test]
async fn jwks_refresh_interval_and_key_removal_invalidates_cached_tokens() {
    let clock = clock();
    let (provider, addr, _) = provider().await;
    let k1 = rsa_jwk("rsa.key", "k1");
    let k2 = rsa_jwk("rsa-other.key", "k2");
    let source = JwksSource::builder(fetcher(addr))
        .refresh_floor(Duration::from_secs(60))
        .refresh_ceiling(Duration::from_secs(3600))
        .clock(Arc::new(clock.clone()))
        .build();
    for (max_age, expected) in [
        (Some(5), 60),
        (Some(600), 600),
        (Some(999_999), 3600),
        (None, 60),
    ] {
        provider.serve_keys(&[k1.clone(), k2.clone()], max_age);
        assert_eq!(
            source.refresh().await.unwrap(),
            Duration::from_secs(expected),
            "{max_age:?}"
        );
    }

    let client = serve(layer_on(source.clone(), &clock)).await;
    let token = rs_token("rsa.key", "k1");
    assert_eq!(bearer(&client, &token).await.status, 200);
    assert_eq!(bearer(&client, &token).await.status, 200, "cached");
    // The same keys served again keep the cache; k1's removal ends it.
    provider.serve_keys(&[k1.clone(), k2.clone()], None);
    source.refresh().await.unwrap();
    assert_eq!(bearer(&client, &token).await.status, 200);
    provider.serve_keys(std::slice::from_ref(&k2), None);
    source.refresh().await.unwrap();
    assert_refused(&bearer(&client, &token).await, "invalid_credential");
}

#[cfg(feature = "jwks-hyper")]
#[tokio::test]
async fn hyper_fetcher_loads_refreshes_and_reports_failures() {
    use tollgate::jwt::jwks::HyperJwksFetcher;

    let clock = clock();
    let (provider, addr, fetches) = provider().await;
    let uri: http::Uri = format!("http://{addr}/jwks").parse().unwrap();
    provider.serve_keys(&[rsa_jwk("rsa.key", "k1")], Some(900));
    let source = JwksSource::builder(HyperJwksFetcher::http(uri.clone()))
        .clock(Arc::new(clock.clone()))
        .build();
    assert_eq!(source.refresh().await.unwrap(), Duration::from_secs(900));
    let client = serve(layer_on(source.clone(), &clock)).await;
    assert_eq!(
        bearer(&client, &rs_token("rsa.key", "k1")).await.status,
        200
    );

    provider.fail();
    let error = source.refresh().await.unwrap_err();
    assert!(error.to_string().contains("500"), "{error}");
    assert_eq!(
        bearer(&client, &rs_token("rsa.key", "k1")).await.status,
        200
    );

    provider.serve_keys(
        &[rsa_jwk("rsa.key", "k1"), rsa_jwk("rsa-other.key", "k2")],
        None,
    );
    let small = JwksSource::builder(HyperJwksFetcher::http(uri).max_body(64)).build();
    assert!(
        small.refresh().await.is_err(),
        "a document over the size limit is refused"
    );
    assert_eq!(small.keys().len(), 0);
    assert_eq!(fetches.load(Ordering::SeqCst), 3);
}

/// Compile-time: the public types cross threads, as axum and tonic need.
#[allow(dead_code)]
fn public_types_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<JwtLayer>();
    send_sync::<JwksSource>();
    send_sync::<RevocationList>();
    send_sync::<tollgate::jwt::VerifiedToken>();
    send_sync::<Claims<StandardClaims>>();
    send_sync::<UserIdentity>();
    fn send<T: Send>() {}
    send::<tollgate::jwt::KeyFetch<StandardClaims>>();
}

#[tokio::test]
async fn query_and_cookie_sources_only_when_enabled() {
    let clock = clock();
    let token = hs_token(json!({}));
    let off = serve(layer_on(hs_key(), &clock)).await;
    let query = format!("/me?access_token={token}");
    let cookie = format!("theme=dark; at={token}");
    assert_eq!(off.get(&query, &[]).await.status, 401);
    assert_eq!(
        off.get("/me", &[("cookie", cookie.as_bytes())])
            .await
            .status,
        401
    );

    let on = serve(
        JwtLayer::builder(hs_key())
            .token_from_query()
            .token_from_cookie("at")
            .clock(Arc::new(clock.clone()))
            .build()
            .unwrap(),
    )
    .await;
    assert_eq!(on.get(&query, &[]).await.status, 200);
    assert_eq!(
        on.get("/me", &[("cookie", cookie.as_bytes())]).await.status,
        200
    );
    let both = on.get(&query, &[("cookie", cookie.as_bytes())]).await;
    assert_eq!(both.status, 400, "RFC 6750 §2: one method per request");
    assert_eq!(both.json()["code"], "invalid_request");
}

/// Mutated tokens and hostile claim values: always a rejection, never a panic.
#[test]
fn mutations_and_hostile_claims_are_rejections_not_panics() {
    let layer = JwtLayer::builder(hs_key())
        .no_cache()
        .clock(Arc::new(clock()))
        .build()
        .unwrap();
    let authenticator = layer.authenticator();
    let good = hs_token(json!({}));
    assert!(authenticator.validate(&good).is_ok());

    let alphabet = b"AZaz09-_.=+/~ {}\"\\\x00\xff";
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..20_000 {
        let mut bytes = good.clone().into_bytes();
        for _ in 0..=(next() % 4) {
            if bytes.is_empty() {
                break;
            }
            let at = usize::try_from(next() % bytes.len() as u64).unwrap();
            match next() % 3 {
                0 => bytes[at] = alphabet[usize::try_from(next() % alphabet.len() as u64).unwrap()],
                1 => {
                    bytes.remove(at);
                }
                _ => bytes.truncate(at),
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        if text != good {
            assert!(authenticator.validate(&text).is_err(), "{text}");
        }
    }

    let hostile = [
        r#"{"exp":1e309}"#,
        r#"{"exp":18446744073709551616}"#,
        r#"{"exp":-0.0,"nbf":null}"#,
        r#"{"exp":1.5e12}"#,
        r#"{"exp":9999999999,"aud":[[]]}"#,
        r#"{"exp":9999999999,"aud":{"a":1}}"#,
        r#"{"exp":9999999999,"scp":[1,2]}"#,
        r#"{"exp":9999999999,"sub":"\ud800"}"#,
        r#"{"exp":9999999999,"iss":"a","iss":"b"}"#,
        r#"{"exp":9999999999}garbage"#,
        r#"{"exp":9999999999"#,
        r#""just a string""#,
        "null",
        "",
    ];
    for claims in hostile {
        let token = sign_raw(
            r#"{"alg":"HS256","kid":"hs"}"#,
            claims,
            &hs256(),
            Alg::HS256,
        );
        assert!(authenticator.validate(&token).is_err(), "{claims}");
    }
    // Odd but valid: accepted.
    let nested = sign_raw(
        r#"{"alg":"HS256","kid":"hs"}"#,
        r#"{"exp":9999999999,"act":{"sub":{"sub":{"sub":[[[[[[[[]]]]]]]]}}},"x":"\u00e9\""}"#,
        &hs256(),
        Alg::HS256,
    );
    assert!(authenticator.validate(&nested).is_ok());
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let token = sign_raw(
        r#"{"alg":"HS256","kid":"hs"}"#,
        &format!(r#"{{"exp":9999999999,"x":{deep}}}"#),
        &hs256(),
        Alg::HS256,
    );
    assert!(
        authenticator.validate(&token).is_err(),
        "too deep, and too long"
    );
}

/// The default claims type and a user's own type go through the same checks.
#[test]
fn standard_and_custom_claims_are_checked_alike() {
    #[derive(serde::Deserialize)]
    struct Mine {
        #[allow(dead_code)]
        sub: Option<String>,
    }
    let standard = JwtLayer::builder(hs_key())
        .issuer("https://a.example")
        .audience("api")
        .clock(Arc::new(clock()))
        .build()
        .unwrap();
    let custom = JwtLayer::builder(hs_key())
        .claims::<Mine>()
        .issuer("https://a.example")
        .audience("api")
        .clock(Arc::new(clock()))
        .build()
        .unwrap();
    let base = format!(r#""iss":"https://a.example","exp":{}"#, NOW + 60);
    let cases = [
        (format!(r#"{{{base},"aud":"api","scp":"a b"}}"#), None),
        (
            format!(r#"{{{base},"aud":["x","api"],"scp":["a","b"]}}"#),
            None,
        ),
        (
            format!(r#"{{{base},"aud":"web"}}"#),
            Some("invalid_credential"),
        ),
        (format!(r#"{{{base}}}"#), Some("invalid_credential")),
        (
            format!(r#"{{{base},"aud":["api",1]}}"#),
            Some("malformed_credential"),
        ),
        (
            format!(r#"{{{base},"aud":"api","scp":[true]}}"#),
            Some("malformed_credential"),
        ),
        (
            format!(r#"{{{base},"aud":"api","exp":1}}"#),
            Some("malformed_credential"),
        ),
        (
            format!(
                r#"{{"iss":"https://a.example","aud":"api","exp":{}}}"#,
                NOW - 61
            ),
            Some("expired_credential"),
        ),
        (
            r#"{"iss":"https://a.example","aud":"api"}"#.to_owned(),
            Some("invalid_credential"),
        ),
    ];
    for (claims, expected) in &cases {
        let token = sign_raw(
            r#"{"alg":"HS256","kid":"hs"}"#,
            claims,
            &hs256(),
            Alg::HS256,
        );
        let got_standard = standard.authenticator().validate(&token);
        let got_custom = custom.authenticator().validate(&token);
        let code_standard = got_standard.as_ref().err().map(|e| e.kind().code());
        let code_custom = got_custom.as_ref().err().map(|e| e.kind().code());
        assert_eq!(code_standard, *expected, "standard: {claims}");
        assert_eq!(code_custom, *expected, "custom: {claims}");
        if expected.is_none() {
            let user = got_standard.unwrap().user().clone();
            assert_eq!(user.scopes(), ["a", "b"]);
            assert_eq!(user.issuer(), Some("https://a.example"));
            assert_eq!(got_custom.unwrap().user().scopes(), ["a", "b"]);
        }
    }
}

/// Two layers on one thread (a current-thread runtime serves both): a token the first has
/// verified and cached is still checked afresh by the second, whose key differs. The
/// per-thread front table of the verified-token cache is per layer.
#[tokio::test]
async fn a_token_cached_by_one_layer_is_not_a_hit_for_another() {
    let clock = clock();
    let other = JwtKey::hmac(b"another secret of at least 32 bytes!!", Algorithm::HS256)
        .unwrap()
        .with_kid("hs");
    let trusting = serve(layer_on(hs_key(), &clock)).await;
    let other = serve(layer_on(other, &clock)).await;

    let token = hs_token(json!({}));
    for _ in 0..3 {
        assert_eq!(bearer(&trusting, &token).await.status, 200);
        assert_refused(&bearer(&other, &token).await, "invalid_credential");
    }
}
