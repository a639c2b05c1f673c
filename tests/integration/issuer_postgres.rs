//! `PostgresRefreshStore` against the real PostgreSQL server `scripts/test.sh` starts: the
//! database enforces one successor per use, across service instances with their own pools.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use futures_util::future::join_all;
use tollgate::clock::ManualClock;
use tollgate::issuer::{
    ErrorCode, Grant, PostgresRefreshStore, RefreshTokenStore, SigningKey, TokenIssuer,
    TokenService,
};
use tollgate::jwt::Algorithm;

use crate::postgres::migrated_pool;

fn service(
    clock: &ManualClock,
    store: PostgresRefreshStore,
    grace: Duration,
) -> TokenService<PostgresRefreshStore> {
    let key = SigningKey::hmac("k1", [9; 32], Algorithm::HS256).unwrap();
    let issuer = TokenIssuer::builder("https://auth.example", key)
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    TokenService::builder(issuer, store)
        .grace_window(grace)
        .build()
}

/// The claims of a compact JWT (the layer verifies them elsewhere; here only what was minted).
fn payload(token: &str) -> serde_json::Value {
    use base64::Engine as _;
    let part = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn clock() -> ManualClock {
    ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
}

#[tokio::test]
async fn postgres_rotation_reuse_grace_and_logout() {
    let clock = clock();
    let store = PostgresRefreshStore::new(migrated_pool().await);
    let service = service(&clock, store.clone(), Duration::from_secs(10));

    // Custom claims are kept in PostgreSQL with the session (migration 0003).
    let grant = Grant::new("alice")
        .scopes(["orders:read"])
        .claims(&serde_json::json!({"tenant": "acme", "tier": 2}))
        .unwrap();
    let login = service.issue_grant(grant).await.unwrap();
    let mut chain = vec![login.refresh_token.unwrap()];
    for _ in 0..4 {
        clock.advance(Duration::from_secs(30));
        let next = service.refresh(chain.last().unwrap()).await.unwrap();
        assert_eq!(next.scope.as_deref(), Some("orders:read"));
        let claims = payload(&next.access_token);
        assert_eq!(
            (&claims["tenant"], &claims["tier"]),
            (&"acme".into(), &2.into())
        );
        chain.push(next.refresh_token.unwrap());
    }
    let family = service.family_of(&chain[0]).await.unwrap().unwrap();
    assert_eq!(store.family(&family).await.unwrap().len(), 5);

    // The direct predecessor, within the window: the same successor, once.
    let retry = service.refresh(&chain[3]).await.unwrap();
    assert_eq!(retry.refresh_token.as_deref(), Some(chain[4].as_str()));
    assert_eq!(
        store.family(&family).await.unwrap().len(),
        5,
        "no new token"
    );
    // A second retry is a reuse: the family dies, the active token included.
    let error = service.refresh(&chain[3]).await.unwrap_err();
    assert_eq!(error.code(), ErrorCode::InvalidGrant);
    let error = service.refresh(&chain[4]).await.unwrap_err();
    assert_eq!(error.code(), ErrorCode::InvalidGrant);

    // Logout revokes another family; unknown and malformed tokens are invalid_grant.
    let other = service.issue("bob", ["orders:read"]).await.unwrap();
    let other = other.refresh_token.unwrap();
    assert!(service.logout(&other).await.unwrap());
    assert!(service.refresh(&other).await.is_err());
    for bad in ["", "rt_x", "rt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"] {
        assert_eq!(
            service.refresh(bad).await.unwrap_err().code(),
            ErrorCode::InvalidGrant
        );
    }
    // Expired.
    let late = service.issue("carol", ["orders:read"]).await.unwrap();
    clock.advance(Duration::from_secs(31 * 24 * 3600));
    let error = service
        .refresh(late.refresh_token.as_deref().unwrap())
        .await
        .unwrap_err();
    assert_eq!(error.description(), Some("The refresh token has expired."));
}

/// Two service instances, each with its own pool, refreshing with the same token at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_concurrent_refreshes_from_two_instances_yield_one_successor() {
    for grace in [Duration::ZERO, Duration::from_secs(5)] {
        let clock = clock();
        let a = service(
            &clock,
            PostgresRefreshStore::new(migrated_pool().await),
            grace,
        );
        let b = service(
            &clock,
            PostgresRefreshStore::new(migrated_pool().await),
            grace,
        );
        let t0 = a
            .issue("alice", ["orders:read"])
            .await
            .unwrap()
            .refresh_token
            .unwrap();
        let attempts = (0..8).map(|i| {
            let service = if i % 2 == 0 { a.clone() } else { b.clone() };
            let t0 = t0.clone();
            tokio::spawn(async move { service.refresh(&t0).await })
        });
        let results: Vec<_> = join_all(attempts)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let successors: BTreeSet<_> = results
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .map(|t| t.refresh_token.clone().unwrap())
            .collect();
        assert_eq!(successors.len(), 1, "grace {grace:?}: one successor");
        let family = a.family_of(&t0).await.unwrap().unwrap();
        assert_eq!(
            a.store().family(&family).await.unwrap().len(),
            2,
            "grace {grace:?}"
        );
        let ok = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(ok, if grace.is_zero() { 1 } else { 2 }, "grace {grace:?}");
        for error in results.iter().filter_map(|r| r.as_ref().err()) {
            assert_eq!(error.code(), ErrorCode::InvalidGrant);
        }
    }
}
