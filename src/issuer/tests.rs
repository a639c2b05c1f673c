//! Unit tests of the issuing flows on a manual clock (the HTTP-level ones are in
//! `tests/integration/issuer.rs`).

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::*;
use crate::clock::ManualClock;
use crate::identity::AppIdentity;
use crate::jwt::{Algorithm, Revocation, RevocationList};

const NOW: u64 = 1_700_000_000;

fn clock() -> ManualClock {
    ManualClock::new(UNIX_EPOCH + Duration::from_secs(NOW))
}

fn issuer(clock: &ManualClock) -> TokenIssuer {
    let key = SigningKey::hmac("k1", [7; 32], Algorithm::HS256).unwrap();
    TokenIssuer::builder("https://auth.example", key)
        .audience("https://api.example")
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap()
}

fn service(clock: &ManualClock, grace: Duration) -> TokenService<Arc<InMemoryRefreshStore>> {
    TokenService::builder(issuer(clock), Arc::new(InMemoryRefreshStore::new()))
        .grace_window(grace)
        .build()
}

fn part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[test]
fn minted_claims_and_header() {
    let clock = clock();
    #[derive(serde::Serialize)]
    struct Extra {
        tenant: &'static str,
    }
    let grant = Grant::new("alice")
        .scopes(["write", "read", "read"])
        .claims(&Extra { tenant: "acme" })
        .unwrap();
    let token = issuer(&clock).mint(&grant).unwrap();
    let claims = part(token.as_str(), 1);
    assert_eq!(claims["iss"], "https://auth.example");
    assert_eq!(claims["aud"], "https://api.example");
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["scope"], "read write");
    assert_eq!(claims["iat"], NOW);
    assert_eq!(claims["nbf"], NOW);
    assert_eq!(claims["exp"], NOW + 900);
    assert_eq!(claims["tenant"], "acme");
    assert_eq!(claims["jti"], token.jti());
    assert_eq!(
        part(token.as_str(), 0),
        json!({"alg": "HS256", "typ": "at+jwt", "kid": "k1"})
    );
    assert!(!format!("{token:?}").contains(token.as_str()));

    assert!(matches!(
        Grant::new("a").claims(&json!({"exp": 1})),
        Err(IssueError::ReservedClaim { .. })
    ));
    assert!(matches!(
        Grant::new("a").claims(&1),
        Err(IssueError::NotAnObject)
    ));
    let long = issuer(&clock)
        .mint(&Grant::new("a").lifetime(Duration::from_secs(86_400)))
        .unwrap();
    assert_eq!(
        part(long.as_str(), 1)["exp"],
        NOW + 900,
        "capped at the issuer's lifetime"
    );
}

#[tokio::test]
async fn bad_refresh_tokens_are_invalid_grant() {
    let clock = clock();
    let service = service(&clock, Duration::ZERO);
    let unknown = RefreshToken::generate().to_plaintext();
    for bad in [
        "",
        "rt_",
        "garbage",
        "rt_!!!",
        &"x".repeat(10_000),
        &unknown,
    ] {
        let error = service.refresh(bad).await.unwrap_err();
        assert_eq!(error.code(), ErrorCode::InvalidGrant, "{bad:?}");
        assert_eq!(error.status(), 400);
    }
    let login = service.issue("alice", ["read"]).await.unwrap();
    clock.advance(Duration::from_secs(31 * 24 * 3600));
    let error = service
        .refresh(login.refresh_token.as_deref().unwrap())
        .await
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::InvalidGrant);
    assert_eq!(error.description(), Some("The refresh token has expired."));
    assert_eq!(
        error.to_json(),
        r#"{"error":"invalid_grant","error_description":"The refresh token has expired."}"#
    );
}

#[tokio::test]
async fn grace_window_returns_the_same_successor_once() {
    let clock = clock();
    let service = service(&clock, Duration::from_secs(10));
    let login = service.issue("alice", ["read"]).await.unwrap();
    let t0 = login.refresh_token.unwrap();
    let first = service.refresh(&t0).await.unwrap();
    clock.advance(Duration::from_secs(2));
    let again = service.refresh(&t0).await.unwrap();
    assert_eq!(
        again.refresh_token, first.refresh_token,
        "the same successor"
    );
    assert_eq!(
        part(&again.access_token, 1)["jti"],
        part(&first.access_token, 1)["jti"],
        "the same access token id"
    );
    // Only once: a third use is a reuse and revokes the family.
    assert!(service.refresh(&t0).await.is_err());
    assert!(
        service
            .refresh(first.refresh_token.as_deref().unwrap())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_narrowed_retry_within_the_grace_window_is_still_one_retry() {
    let clock = clock();
    let service = service(&clock, Duration::from_secs(10));
    let code = |result: Result<TokenResponse, OAuthError>| result.unwrap_err().code();

    // A retry may narrow: the same successor, an access token with less.
    let t0 = service.issue("alice", ["a", "b"]).await.unwrap();
    let t0 = t0.refresh_token.unwrap();
    let first = service.refresh(&t0).await.unwrap();
    let again = service.refresh_with_scopes(&t0, ["a"]).await.unwrap();
    assert_eq!(again.refresh_token, first.refresh_token);
    assert_eq!(again.scope.as_deref(), Some("a"));

    // A retry asking for more is refused, and it was the one retry: the next is a reuse.
    let t0 = service.issue("bob", ["a"]).await.unwrap();
    let t0 = t0.refresh_token.unwrap();
    let first = service.refresh(&t0).await.unwrap();
    let wider = service.refresh_with_scopes(&t0, ["a", "admin"]).await;
    assert_eq!(code(wider), ErrorCode::InvalidScope);
    assert_eq!(code(service.refresh(&t0).await), ErrorCode::InvalidGrant);
    let successor = first.refresh_token.unwrap();
    assert_eq!(
        code(service.refresh(&successor).await),
        ErrorCode::InvalidGrant
    );
}

#[tokio::test]
async fn grace_window_accepts_only_the_direct_predecessor_in_time() {
    let clock = clock();
    let service = service(&clock, Duration::from_secs(10));
    let t0 = service
        .issue("alice", ["read"])
        .await
        .unwrap()
        .refresh_token
        .unwrap();
    let t1 = service.refresh(&t0).await.unwrap().refresh_token.unwrap();
    let t2 = service.refresh(&t1).await.unwrap().refresh_token.unwrap();
    // t0 is two steps back: a reuse even within the window.
    assert!(service.refresh(&t0).await.is_err());
    assert!(service.refresh(&t2).await.is_err(), "the family is revoked");

    let u0 = service
        .issue("bob", ["read"])
        .await
        .unwrap()
        .refresh_token
        .unwrap();
    let u1 = service.refresh(&u0).await.unwrap().refresh_token.unwrap();
    clock.advance(Duration::from_secs(11));
    assert!(
        service.refresh(&u0).await.is_err(),
        "after the window: a reuse"
    );
    assert!(service.refresh(&u1).await.is_err());
}

#[tokio::test]
async fn reuse_denylists_the_family_access_tokens() {
    let clock = clock();
    let denylist = RevocationList::with_clock(Arc::new(clock.clone()));
    let service = TokenService::builder(issuer(&clock), InMemoryRefreshStore::new())
        .denylist(denylist.clone())
        .build();
    let login = service.issue("alice", ["read"]).await.unwrap();
    let t0 = login.refresh_token.unwrap();
    let next = service.refresh(&t0).await.unwrap();
    let jtis = [&login.access_token, &next.access_token]
        .map(|t| part(t, 1)["jti"].as_str().unwrap().to_owned());
    assert!(jtis.iter().all(|j| !denylist.is_revoked(j)));
    assert!(service.refresh(&t0).await.is_err());
    assert!(jtis.iter().all(|j| denylist.is_revoked(j)));

    // Logout revokes a family the same way.
    let other = service.issue("bob", ["read"]).await.unwrap();
    let jti = part(&other.access_token, 1)["jti"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        service
            .logout(other.refresh_token.as_deref().unwrap())
            .await
            .unwrap()
    );
    assert!(denylist.is_revoked(&jti));
    assert!(
        service
            .refresh(other.refresh_token.as_deref().unwrap())
            .await
            .is_err()
    );
    assert!(!service.logout("rt_unknown").await.unwrap());
}

#[tokio::test]
async fn exchange_narrows_scopes_and_records_the_actor() {
    let clock = clock();
    let directory: std::collections::HashMap<String, DirectoryUser> = [
        (
            "alice".to_owned(),
            DirectoryUser::active(["invoices:read", "orders:read", "orders:write"]).tenant("acme"),
        ),
        ("bob".to_owned(), DirectoryUser::active(["orders:read"])),
    ]
    .into();
    let exchange = TokenExchange::new(issuer(&clock), directory);
    let app = AppIdentity::builder("key_1", "app_billing")
        .scopes(["token:exchange", "orders:read", "invoices:read"])
        .build();
    let answer = exchange
        .exchange(&app, "alice", Some("orders:read orders:write"))
        .await
        .unwrap();
    assert_eq!(answer.expires_in, 180);
    assert_eq!(answer.refresh_token, None);
    let claims = part(&answer.access_token, 1);
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["scope"], "orders:read");
    assert_eq!(claims["act"], json!({"sub": "app_billing"}));
    assert_eq!(claims["azp"], "app_billing");
    assert_eq!(claims["client_id"], "app_billing");
    assert_eq!(claims["tenant"], "acme");

    let all = exchange.exchange(&app, "alice", None).await.unwrap();
    assert_eq!(
        all.scope.as_deref(),
        Some("invoices:read orders:read"),
        "never token:exchange"
    );
    let none = exchange
        .exchange(&app, "alice", Some("admin"))
        .await
        .unwrap_err();
    assert_eq!(none.code(), ErrorCode::InvalidScope);
    let empty = exchange.exchange(&app, "", None).await.unwrap_err();
    assert_eq!(empty.code(), ErrorCode::InvalidRequest);

    let plain = AppIdentity::builder("key_2", "app_plain")
        .scopes(["orders:read"])
        .build();
    let refused = exchange.exchange(&plain, "alice", None).await.unwrap_err();
    assert_eq!(refused.code(), ErrorCode::UnauthorizedClient);

    let only_bob = exchange.policy(|_: &AppIdentity, user: &str| user == "bob");
    assert!(only_bob.exchange(&app, "bob", None).await.is_ok());
    let refused = only_bob.exchange(&app, "alice", None).await.unwrap_err();
    assert_eq!(refused.code(), ErrorCode::UnauthorizedClient);
}

/// A directory whose database is down.
struct Down;

impl UserDirectory for Down {
    async fn find_user(&self, _: &str) -> Result<Option<DirectoryUser>, DirectoryError> {
        Err("connection refused".into())
    }
}

#[tokio::test]
async fn a_failing_directory_mints_nothing() {
    let clock = clock();
    let app = AppIdentity::builder("key_1", "app_billing")
        .scopes(["token:exchange", "orders:read"])
        .build();
    let refused = TokenExchange::new(issuer(&clock), Down)
        .exchange(&app, "alice", None)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), ErrorCode::TemporarilyUnavailable);
}

#[test]
fn rotated_keys_stay_published_until_their_tokens_expire() {
    let clock = clock();
    let fixture = |name: &str| {
        std::fs::read(format!(
            "{}/tests/fixtures/jwt/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    };
    let old = SigningKey::ec_pem("old", fixture("ec256.key"), Algorithm::ES256).unwrap();
    let new = SigningKey::ed_pem("new", fixture("ed25519.key")).unwrap();
    let issuer = TokenIssuer::builder("https://auth.example", old)
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let kids = |issuer: &TokenIssuer| {
        issuer
            .jwks()
            .keys()
            .iter()
            .map(|k| k.common.key_id.clone().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(kids(&issuer), ["old"]);
    issuer.rotate_key(new);
    assert_eq!(kids(&issuer), ["new", "old"]);
    assert_eq!(issuer.verification_keys().len(), 2);
    clock.advance(Duration::from_secs(900 + 59));
    assert_eq!(kids(&issuer), ["new", "old"]);
    clock.advance(Duration::from_secs(2));
    assert_eq!(kids(&issuer), ["new"]);
    assert_eq!(issuer.verification_keys().len(), 1);
    let json: Value = serde_json::from_str(&issuer.jwks().to_json()).unwrap();
    assert_eq!(json["keys"][0]["kty"], "OKP");
}

#[tokio::test]
async fn the_memory_store_sweeps_expired_sessions_as_it_grows() {
    let clock = clock();
    let store = Arc::new(InMemoryRefreshStore::new());
    let service = TokenService::builder(issuer(&clock), Arc::clone(&store))
        .refresh_lifetime(Duration::from_secs(60))
        .build();
    // Sessions that all expire, then as many again: the second wave sweeps the first.
    for _ in 0..3_000 {
        service.issue("alice", ["read"]).await.unwrap();
    }
    assert_eq!(store.len(), 3_000, "nothing expired yet, nothing swept");
    clock.advance(Duration::from_secs(61));
    for _ in 0..3_000 {
        service.issue("bob", ["read"]).await.unwrap();
    }
    assert!(
        store.len() <= 3_000 + 1,
        "expired records were swept: {} left",
        store.len()
    );
    let live = service.issue("carol", ["read"]).await.unwrap();
    assert!(
        service
            .refresh(live.refresh_token.as_deref().unwrap())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn lifetimes_too_long_to_add_saturate_instead_of_panicking() {
    let clock = clock();
    let key = SigningKey::hmac("k1", [7; 32], Algorithm::HS256).unwrap();
    let issuer = TokenIssuer::builder("https://auth.example", key)
        .lifetime(Duration::MAX)
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let token = issuer.mint(&Grant::new("alice")).unwrap();
    assert!(part(token.as_str(), 1)["exp"].as_u64().unwrap() > NOW);
    issuer.rotate_key(SigningKey::hmac("k2", [8; 32], Algorithm::HS256).unwrap());
    let service = TokenService::builder(issuer, InMemoryRefreshStore::new())
        .refresh_lifetime(Duration::MAX)
        .build();
    let login = service.issue("alice", ["read"]).await.unwrap();
    assert!(service.refresh(&login.refresh_token.unwrap()).await.is_ok());
}

#[tokio::test]
async fn a_refresh_store_chosen_at_run_time_rotates_and_detects_reuse() {
    let clock = clock();
    let store: crate::issuer::BoxRefreshStore = Arc::new(InMemoryRefreshStore::new());
    let service = TokenService::builder(issuer(&clock), store).build();
    let login = service.issue("alice", ["read"]).await.unwrap();
    let first = login.refresh_token.as_deref().unwrap();
    let rotated = service.refresh(first).await.unwrap();
    assert!(rotated.refresh_token.is_some());
    // The first token again, past any grace: a reuse, the family is revoked.
    let error = service.refresh(first).await.unwrap_err();
    assert_eq!(error.code(), ErrorCode::InvalidGrant);
    let error = service
        .refresh(rotated.refresh_token.as_deref().unwrap())
        .await
        .unwrap_err();
    assert_eq!(
        error.code(),
        ErrorCode::InvalidGrant,
        "the family is revoked"
    );
}
