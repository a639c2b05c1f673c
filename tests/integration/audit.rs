//! Audit events from real axum servers: one per refusal (and per admitted request when the
//! sink asks), naming the layer, the code, the app and key or the user when known, the path
//! and the client; never a credential.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::ConnectInfo;
use tollgate::Quota;
use tollgate::api_key::{ApiKeyLayer, ApiKeys, InMemoryKeyStore, NewKey};
use tollgate::observe::{AuditEvent, AuditSink};
use tollgate::rate_limit::RateLimitLayer;

use crate::support::{HttpClient, serve_axum};

/// An event as a sink keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Kept {
    layer: &'static str,
    allowed: bool,
    code: Option<&'static str>,
    app_id: Option<String>,
    key_id: Option<String>,
    path: String,
    client: Option<std::net::IpAddr>,
}

#[derive(Clone, Default)]
struct Collect {
    events: Arc<Mutex<Vec<Kept>>>,
    allowed_too: bool,
}

impl AuditSink for Collect {
    fn record(&self, event: &AuditEvent<'_>) {
        let client = event.client.or_else(|| {
            event
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip())
        });
        self.events.lock().unwrap().push(Kept {
            layer: event.layer,
            allowed: event.allowed,
            code: event.code,
            app_id: event.app_id.map(str::to_owned),
            key_id: event.key_id.map(str::to_owned),
            path: event.path.to_owned(),
            client,
        });
    }

    fn wants_allowed(&self) -> bool {
        self.allowed_too
    }
}

impl Collect {
    fn take(&self) -> Vec<Kept> {
        std::mem::take(&mut self.events.lock().unwrap())
    }
}

#[tokio::test]
async fn refusals_are_audited_with_who_and_where_and_admitted_requests_only_on_request() {
    let keys = ApiKeys::builder(InMemoryKeyStore::new()).build();
    let good = keys
        .generate(NewKey::new("billing", "Billing").quota(Quota::per_hour(1)))
        .await
        .unwrap();
    let revoked = keys.generate(NewKey::new("old", "Old")).await.unwrap();
    keys.revoke(revoked.record().id()).await.unwrap();
    let (auth_sink, limit_sink) = (Collect::default(), Collect::default());
    let router = axum::Router::new()
        .route("/orders", axum::routing::get(|| async { "ok" }))
        .route_layer(
            tower::ServiceBuilder::new()
                .layer(ApiKeyLayer::new(keys.clone()).audit(auth_sink.clone()))
                .layer(RateLimitLayer::new(Quota::per_hour(100)).audit(limit_sink.clone())),
        );
    let client = HttpClient::new(serve_axum(router).await);
    let call = async |key: Option<&str>| {
        let headers: Vec<(&str, &[u8])> = key
            .map(|k| ("x-api-key", k.as_bytes()))
            .into_iter()
            .collect();
        client
            .get("/orders?token=secret-in-query", &headers)
            .await
            .status
            .as_u16()
    };
    assert_eq!(call(None).await, 401);
    assert_eq!(call(Some(revoked.key().expose())).await, 401);
    assert_eq!(call(Some(good.key().expose())).await, 200);
    assert_eq!(call(Some(good.key().expose())).await, 429);

    let events = auth_sink.take();
    assert_eq!(events.len(), 2, "refusals only: {events:?}");
    assert_eq!(events[0].code, Some("missing_credential"));
    assert_eq!(events[0].app_id, None);
    assert_eq!(events[1].code, Some("revoked_credential"));
    assert_eq!(events[1].app_id.as_deref(), Some("old"));
    assert_eq!(events[1].key_id.as_deref(), Some(revoked.record().id()));
    for event in &events {
        assert_eq!(event.layer, "api_key");
        assert!(!event.allowed);
        assert_eq!(event.path, "/orders", "the path, never the query");
        assert_eq!(event.client, Some("127.0.0.1".parse().unwrap()));
    }
    let limited = limit_sink.take();
    assert_eq!(limited.len(), 1, "{limited:?}");
    assert_eq!(limited[0].layer, "rate_limit");
    assert_eq!(limited[0].code, Some("rate_limited"));
    assert_eq!(limited[0].app_id.as_deref(), Some("billing"));
    assert_eq!(limited[0].key_id.as_deref(), Some(good.record().id()));
    let debug = format!("{events:?}{limited:?}");
    for secret in [
        good.key().expose(),
        revoked.key().expose(),
        "secret-in-query",
    ] {
        assert!(!debug.contains(secret));
    }

    // A sink that asks for admitted requests gets them too.
    let everything = Collect {
        allowed_too: true,
        ..Collect::default()
    };
    let router = axum::Router::new()
        .route("/", axum::routing::get(|| async { "ok" }))
        .route_layer(ApiKeyLayer::new(keys).audit(everything.clone()));
    let client = HttpClient::new(serve_axum(router).await);
    let with_key = [("x-api-key", good.key().expose().as_bytes())];
    assert_eq!(client.get("/", &with_key).await.status, 200);
    let events = everything.take();
    assert_eq!(events.len(), 1);
    assert!(events[0].allowed);
    assert_eq!(events[0].code, None);
    assert_eq!(events[0].app_id.as_deref(), Some("billing"));
}
