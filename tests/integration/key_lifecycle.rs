//! Key lifecycle through real axum servers, on the real PostgreSQL (and Redis) of
//! `scripts/test.sh`: keys of another system imported and used next to the crate's own,
//! environments, applications disabled and re-enabled across two instances, plans inherited
//! by keys, keys created inactive.

use std::time::Duration;

use axum::Extension;
use tollgate::Quota;
use tollgate::api_key::postgres::PostgresKeyStore;
use tollgate::api_key::redis::{RedisInvalidation, Subscription};
use tollgate::api_key::{
    ApiKey, ApiKeyLayer, ApiKeys, Application, ForeignKeyFormat, InMemoryKeyStore, KeyFormat,
    KeyStore, NewKey, StoreErrorKind,
};
use tollgate::identity::AppIdentity;
use tollgate::rate_limit::RateLimitLayer;

use crate::postgres::migrated_pool;
use crate::servers::{redis_url, unique};
use crate::support::{Answer, HttpClient, serve_axum};

async fn whoami(Extension(app): Extension<AppIdentity>) -> String {
    app.app_id().to_owned()
}

/// An API behind `keys`, with a per-key limit taken from the key (or its app's plan).
async fn api<K: KeyStore>(keys: &ApiKeys<K>) -> HttpClient {
    let router = axum::Router::new()
        .route("/", axum::routing::get(whoami))
        .route_layer(
            tower::ServiceBuilder::new()
                .layer(ApiKeyLayer::new(keys.clone()))
                .layer(RateLimitLayer::new(Quota::per_hour(1_000))),
        );
    HttpClient::new(serve_axum(router).await)
}

async fn call(client: &HttpClient, key: &str) -> Answer {
    client.get("/", &[("x-api-key", key.as_bytes())]).await
}

fn code(answer: &Answer) -> String {
    answer.json()["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A random body of `n` base62 characters.
fn body(n: usize) -> String {
    let key = KeyFormat::default().generate();
    key.expose()[3..3 + n].to_owned()
}

#[tokio::test]
async fn keys_of_another_format_work_next_to_the_crates_own_and_never_share_a_digest() {
    let acme = ForeignKeyFormat::new("acme_live_", ForeignKeyFormat::BASE62, 32..=32).unwrap();
    let keys = ApiKeys::builder(PostgresKeyStore::new(migrated_pool().await))
        .accept_format(acme)
        .build();
    let app = unique("acme");
    // Two keys that differ only in their last six characters: a 0.1 digest made them one.
    let stem = body(26);
    let first = ApiKey::from_plaintext(format!("acme_live_{stem}AAAAAA"));
    let second = ApiKey::from_plaintext(format!("acme_live_{stem}BBBBBB"));
    keys.import(&first, NewKey::new(&app, "ACME"))
        .await
        .unwrap();
    keys.import(&second, NewKey::new(&app, "ACME"))
        .await
        .unwrap();
    let own = keys.generate(NewKey::new(&app, "ACME")).await.unwrap();
    assert!(
        own.key().expose().starts_with("tg_"),
        "new keys in the crate's format"
    );

    let client = api(&keys).await;
    for key in [first.expose(), second.expose(), own.key().expose()] {
        let answer = call(&client, key).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert_eq!(answer.text(), app);
    }
    let unknown = format!("acme_live_{}", body(32));
    assert_eq!(code(&call(&client, &unknown).await), "invalid_credential");
    let wrong_shape = format!("acme_live_{}", body(31));
    assert_eq!(
        code(&call(&client, &wrong_shape).await),
        "malformed_credential"
    );

    // A key no accepted format matches is refused at import, not stored to never match.
    let plain = ApiKeys::builder(InMemoryKeyStore::new()).build();
    let error = plain
        .import(&first, NewKey::new(&app, "ACME"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Invalid);
    // Its digest is what `sha256sum` prints, so a digest computed by any tool imports.
    let by_digest = ApiKeys::builder(InMemoryKeyStore::new())
        .accept_format(
            ForeignKeyFormat::new("acme_live_", ForeignKeyFormat::BASE62, 32..=32).unwrap(),
        )
        .build();
    let digest = tollgate::api_key::KeyDigest::from_hex(&first.digest().to_hex()).unwrap();
    by_digest
        .import_digest(digest, "acme_live_…", NewKey::new(&app, "ACME"))
        .await
        .unwrap();
    assert!(by_digest.verify(first.expose()).await.is_ok());
}

#[tokio::test]
async fn a_layer_for_one_environment_refuses_the_keys_of_another() {
    let live = KeyFormat::default().with_environment("live").unwrap();
    let test = KeyFormat::default().with_environment("test").unwrap();
    let store = InMemoryKeyStore::new();
    let live_keys = ApiKeys::builder(store.clone()).key_format(live).build();
    let test_keys = ApiKeys::builder(store).key_format(test).build();
    let live_key = live_keys.generate(NewKey::new("app", "App")).await.unwrap();
    let test_key = test_keys.generate(NewKey::new("app", "App")).await.unwrap();
    assert!(live_key.key().expose().starts_with("tg_live_"));
    assert!(test_key.key().expose().starts_with("tg_test_"));
    let client = api(&live_keys).await;
    assert_eq!(call(&client, live_key.key().expose()).await.status, 200);
    let answer = call(&client, test_key.key().expose()).await;
    assert_eq!(answer.status, 401);
    assert_eq!(code(&answer), "malformed_credential");
}

struct Node {
    keys: ApiKeys<PostgresKeyStore>,
    client: HttpClient,
    _subscription: Subscription,
}

async fn node(channel: &str) -> Node {
    let invalidation = RedisInvalidation::connect(&redis_url(), channel)
        .await
        .unwrap();
    let keys = ApiKeys::builder(PostgresKeyStore::new(migrated_pool().await))
        .positive_ttl(Duration::from_secs(3600))
        .on_invalidate(invalidation.hook())
        .build();
    let subscription = invalidation.subscribe(keys.clone()).await.unwrap();
    let client = api(&keys).await;
    Node {
        keys,
        client,
        _subscription: subscription,
    }
}

/// Polls `node` until `key` gets `status`, for up to two seconds.
async fn until(node: &Node, key: &str, status: u16) -> Answer {
    let started = std::time::Instant::now();
    loop {
        let answer = call(&node.client, key).await;
        if answer.status == status || started.elapsed() > Duration::from_secs(2) {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn disabling_an_application_refuses_all_its_keys_on_every_instance_at_once() {
    let channel = unique("tollgate-test:apps");
    let (a, b) = (node(&channel).await, node(&channel).await);
    let app = unique("partner");
    let created = a.keys.generate(NewKey::new(&app, "Partner")).await.unwrap();
    let key = created.key().expose().to_owned();
    assert_eq!(
        call(&b.client, &key).await.status,
        200,
        "cached on B for an hour"
    );

    let disabled = a.keys.disable_app(&app).await.unwrap();
    assert!(!disabled.is_enabled());
    for node in [&a, &b] {
        let answer = until(node, &key, 403).await;
        assert_eq!(answer.status, 403, "{}", answer.text());
        assert_eq!(code(&answer), "app_disabled");
    }
    // A key generated while the application is disabled is refused too.
    let later = a.keys.generate(NewKey::new(&app, "Partner")).await.unwrap();
    assert_eq!(
        code(&call(&b.client, later.key().expose()).await),
        "app_disabled"
    );
    // Its own code: a revoked key of an enabled app still says revoked.
    a.keys.enable_app(&app).await.unwrap();
    for node in [&a, &b] {
        assert_eq!(until(node, &key, 200).await.status, 200);
        assert_eq!(until(node, later.key().expose(), 200).await.status, 200);
    }
    a.keys.revoke(later.record().id()).await.unwrap();
    assert_eq!(
        code(&until(&b, later.key().expose(), 401).await),
        "revoked_credential"
    );
    assert_eq!(a.keys.app(&app).await.unwrap().unwrap().name(), app);
    assert!(a.keys.apps().await.unwrap().iter().any(|x| x.id() == app));
}

#[tokio::test]
async fn keys_inherit_their_applications_plan_unless_they_have_their_own() {
    let keys = ApiKeys::builder(PostgresKeyStore::new(migrated_pool().await)).build();
    let app = unique("plan");
    keys.put_app(
        Application::new(&app, "Planned", std::time::SystemTime::now())
            .with_quota(Some(Quota::per_hour(2))),
    )
    .await
    .unwrap();
    let inherits = keys.generate(NewKey::new(&app, "Planned")).await.unwrap();
    let own = keys
        .generate(NewKey::new(&app, "Planned").quota(Quota::per_hour(4)))
        .await
        .unwrap();
    let client = api(&keys).await;
    let admitted = |key: String| {
        let client = client.clone();
        async move {
            let mut n = 0;
            for _ in 0..6 {
                if call(&client, &key).await.status == 200 {
                    n += 1;
                }
            }
            n
        }
    };
    assert_eq!(
        admitted(inherits.key().expose().to_owned()).await,
        2,
        "the plan"
    );
    assert_eq!(
        admitted(own.key().expose().to_owned()).await,
        4,
        "the key's own"
    );

    // A new plan, without SQL: keys see it at once (the change evicts them).
    keys.set_app_quota(&app, Some(Quota::per_hour(3)))
        .await
        .unwrap();
    let fresh = keys.generate(NewKey::new(&app, "Planned")).await.unwrap();
    assert_eq!(admitted(fresh.key().expose().to_owned()).await, 3);
}

#[tokio::test]
async fn a_key_created_inactive_is_refused_with_its_own_code_until_activated() {
    let keys = ApiKeys::builder(PostgresKeyStore::new(migrated_pool().await)).build();
    let app = unique("inactive");
    let created = keys
        .generate(NewKey::new(&app, "Later").inactive())
        .await
        .unwrap();
    let key = created.key().expose().to_owned();
    let client = api(&keys).await;
    let answer = call(&client, &key).await;
    assert_eq!(answer.status, 401);
    assert_eq!(code(&answer), "inactive_credential");
    let activated = keys.activate(created.record().id()).await.unwrap().unwrap();
    assert!(activated.is_active());
    assert_eq!(call(&client, &key).await.status, 200);
    keys.revoke(created.record().id()).await.unwrap();
    assert_eq!(code(&call(&client, &key).await), "revoked_credential");
    // A revoked key cannot be activated again.
    assert!(
        !keys
            .activate(created.record().id())
            .await
            .unwrap()
            .unwrap()
            .is_active()
    );
    assert_eq!(code(&call(&client, &key).await), "revoked_credential");
}

/// The store chosen at run time (`BoxKeyStore`): the same `ApiKeys<BoxKeyStore>` type over
/// memory and over PostgreSQL, behind a real server.
#[tokio::test]
async fn a_store_chosen_at_run_time_works_as_the_static_one() {
    use tollgate::api_key::BoxKeyStore;

    for use_postgres in [false, true] {
        let store: BoxKeyStore = if use_postgres {
            std::sync::Arc::new(PostgresKeyStore::new(migrated_pool().await))
        } else {
            std::sync::Arc::new(InMemoryKeyStore::new())
        };
        let keys: ApiKeys<BoxKeyStore> = ApiKeys::builder(store).track_usage(true).build();
        let app = unique("dyn");
        let created = keys.generate(NewKey::new(&app, "Dyn")).await.unwrap();
        let client = api(&keys).await;
        let key = created.key().expose().to_owned();
        assert_eq!(
            call(&client, &key).await.text(),
            app,
            "postgres: {use_postgres}"
        );
        keys.flush_usage().await.unwrap();
        assert_eq!(keys.app_usage(&app).await.unwrap().authenticated, 1);
        keys.disable_app(&app).await.unwrap();
        assert_eq!(code(&call(&client, &key).await), "app_disabled");
        keys.enable_app(&app).await.unwrap();
        keys.revoke(created.record().id()).await.unwrap();
        assert_eq!(code(&call(&client, &key).await), "revoked_credential");
        assert_eq!(keys.list(&app).await.unwrap().len(), 1);
    }
}
