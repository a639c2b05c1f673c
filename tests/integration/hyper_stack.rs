//! The README's hyper recipe as written: tollgate's layers in a `ServiceBuilder` over a plain
//! `service_fn`, served by hyper's own connection builder on 127.0.0.1 (no axum, no tonic).

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tollgate::Quota;
use tollgate::api_key::ApiKeyLayer;
use tollgate::identity::AppIdentity;
use tollgate::rate_limit::{ClientIp, Limit, RateLimitLayer};
use tollgate::scope::RequireScopesLayer;
use tower::{ServiceBuilder, ServiceExt};

use crate::support::HttpClient;

fn per_hour(n: u64) -> Quota {
    Quota::per_hour(n)
}

/// Answers with the calling app's id, as the layers left it in the extensions.
async fn handler(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let app = request
        .extensions()
        .get::<AppIdentity>()
        .map_or_else(String::new, |app| app.app_id().to_owned());
    Ok(Response::new(Full::new(Bytes::from(app))))
}

#[tokio::test]
async fn the_readme_hyper_recipe_guards_a_plain_hyper_server() {
    // app-1's key grants orders:read, app-2's orders:write.
    let keys = crate::scopes::keys().await;
    // Two limiters, named apart so a client can tell their fields apart.
    let per_ip = RateLimitLayer::with_limit(Limit::new("per-ip", per_hour(6)).unwrap())
        .key(ClientIp::peer());
    let per_key = RateLimitLayer::with_limit(Limit::new("per-key", per_hour(2)).unwrap());

    let service = ServiceBuilder::new()
        .layer(per_ip) // ClientIp::peer(): reads the SocketAddr inserted below
        .layer(ApiKeyLayer::new(keys.keys))
        .layer(RequireScopesLayer::all(["orders:read"]).unwrap())
        .layer(per_key)
        .service_fn(handler);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, peer) = listener.accept().await.unwrap();
            let service = service
                .clone()
                .map_request(move |mut request: Request<Incoming>| {
                    request.extensions_mut().insert::<SocketAddr>(peer);
                    request
                });
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(
                hyper_util::rt::TokioIo::new(stream),
                hyper_util::service::TowerToHyperService::new(service),
            ));
        }
    });

    let client = HttpClient::new(addr);
    let reader: &[(&str, &[u8])] = &[("x-api-key", keys.reader.as_bytes())];
    let writer: &[(&str, &[u8])] = &[("x-api-key", keys.writer.as_bytes())];

    let anonymous = client.get("/orders", &[]).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert!(anonymous.header("www-authenticate").is_some());
    assert_eq!(
        anonymous.header("ratelimit-policy"),
        Some("\"per-ip\";q=6;w=3600")
    );
    for n in 1..=2u64 {
        let ok = client.get("/orders", reader).await;
        assert_eq!(ok.status, StatusCode::OK, "request {n}: {}", ok.text());
        assert_eq!(ok.text(), "app-1");
        // Both limits, the inner (per key) first.
        assert_eq!(
            ok.header("ratelimit-policy"),
            Some("\"per-key\";q=2;w=3600, \"per-ip\";q=6;w=3600")
        );
        let state = ok.header("ratelimit").unwrap();
        let expected = format!("\"per-key\";r={};t=", 2 - n);
        assert!(state.starts_with(&expected), "{state}");
    }
    // The key's own limit refuses; its state stays in the 429, next to the per-IP one.
    let limited = client.get("/orders", reader).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!(retry >= 1);
    let state = limited.header("ratelimit").unwrap();
    assert!(
        state.starts_with("\"per-key\";r=0;t=") && state.contains(", \"per-ip\";r=2;t="),
        "{state}"
    );
    // A key without the scope.
    let forbidden = client.get("/orders", writer).await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    let challenge = forbidden.header("www-authenticate").unwrap();
    assert!(challenge.contains("insufficient_scope"), "{challenge}");
    // The sixth request from this address is the last the per-IP limit admits; the seventh is
    // refused before authentication, whatever key it carries.
    let sixth = client.get("/orders", &[]).await;
    assert_eq!(sixth.status, StatusCode::UNAUTHORIZED);
    let by_ip = client.get("/orders", reader).await;
    assert_eq!(by_ip.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        by_ip.header("ratelimit-policy"),
        Some("\"per-ip\";q=6;w=3600")
    );
}
