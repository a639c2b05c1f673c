use std::convert::Infallible;

use http::{Request, Response};
use http_body_util::BodyExt;
use tower::{ServiceBuilder, ServiceExt, service_fn};

use super::*;
use crate::identity::{AppIdentity, UserIdentity};
use crate::principal::EffectiveScopes;
use crate::rejection::{Challenge, RejectionKind};

fn request(app: Option<&[&str]>, user: Option<&[&str]>, content_type: &str) -> Request<String> {
    let version = if content_type.starts_with("application/grpc") {
        http::Version::HTTP_2 // as gRPC always is
    } else {
        http::Version::HTTP_11
    };
    let mut request = Request::builder()
        .header("content-type", content_type)
        .version(version)
        .body(String::from("payload"))
        .unwrap();
    if let Some(scopes) = app {
        let app = AppIdentity::builder("k1", "app-1")
            .scopes(scopes.iter().copied())
            .build();
        request.extensions_mut().insert(app);
    }
    if let Some(scopes) = user {
        let user = UserIdentity::new(Some("alice".into()), scopes.iter().copied());
        request.extensions_mut().insert(user);
    }
    request
}

async fn echo(request: Request<String>) -> Result<Response<String>, Infallible> {
    Ok(Response::new(request.into_body()))
}

#[tokio::test]
async fn scopes_pass_refuse_and_render() {
    let service = ServiceBuilder::new()
        .layer(
            RequireScopesLayer::new(
                RequiredScopes::all(["orders:read", "orders:list"])
                    .unwrap()
                    .or(RequiredScopes::all(["admin"]).unwrap()),
            )
            .realm("orders"),
        )
        .service_fn(echo);

    let ok = service
        .clone()
        .oneshot(request(
            Some(&["orders:list", "orders:read"]),
            None,
            "text/plain",
        ))
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(
        ok.into_body().collect().await.unwrap().to_bytes(),
        "payload"
    );

    let forbidden = service
        .clone()
        .oneshot(request(Some(&["orders:read"]), None, "text/plain"))
        .await
        .unwrap();
    assert_eq!(forbidden.status(), 403);
    assert_eq!(
        forbidden.extensions().get::<RejectionKind>(),
        Some(&RejectionKind::InsufficientScope)
    );
    // The API key lacks the scope: the challenge names the API key.
    assert_eq!(
        forbidden.headers()["www-authenticate"],
        r#"ApiKey realm="orders", header="x-api-key", error="insufficient_scope", scope="orders:read orders:list""#
    );
    // A user's token lacks it: `Bearer`. Both lack it: both.
    let user = service
        .clone()
        .oneshot(request(None, Some(&["orders:read"]), "text/plain"))
        .await
        .unwrap();
    assert_eq!(user.status(), 403);
    assert!(
        user.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with(r#"Bearer realm="orders", error="insufficient_scope""#)
    );
    let both = service
        .clone()
        .oneshot(request(Some(&["x"]), Some(&["y"]), "text/plain"))
        .await
        .unwrap();
    let challenges: Vec<&str> = both
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(
        challenges.iter().any(|c| c.starts_with("ApiKey"))
            && challenges.iter().any(|c| c.starts_with("Bearer")),
        "{challenges:?}"
    );
    assert_eq!(
        forbidden.headers()["content-type"],
        "application/problem+json"
    );

    let grpc = service
        .clone()
        .oneshot(request(Some(&["x"]), None, "application/grpc"))
        .await
        .unwrap();
    assert_eq!(grpc.status(), 200);
    assert_eq!(grpc.headers()["grpc-status"], "7");

    let missing = service
        .oneshot(request(None, None, "text/plain"))
        .await
        .unwrap();
    assert_eq!(missing.status(), 401);
    assert_eq!(
        missing.headers()["www-authenticate"],
        r#"Bearer realm="orders""#
    );
}

#[tokio::test]
async fn intersection_by_default_and_overridable() {
    let both = || request(Some(&["a", "b"]), Some(&["b"]), "text/plain");
    let layer = RequireScopesLayer::all(["a"]).unwrap();
    let service = ServiceBuilder::new().layer(layer.clone()).service_fn(echo);
    assert_eq!(service.oneshot(both()).await.unwrap().status(), 403);

    let app_scopes = ServiceBuilder::new()
        .layer(layer.clone().effective_scopes(EffectiveScopes::App))
        .service_fn(echo);
    assert_eq!(app_scopes.oneshot(both()).await.unwrap().status(), 200);

    let mut from_extensions = both();
    from_extensions
        .extensions_mut()
        .insert(EffectiveScopes::App);
    let service = ServiceBuilder::new().layer(layer).service_fn(echo);
    assert_eq!(
        service.oneshot(from_extensions).await.unwrap().status(),
        200
    );
}

#[tokio::test]
async fn inner_is_not_called_when_refused_and_custom_responder_is_used() {
    let called = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = called.clone();
    let service = ServiceBuilder::new()
        .layer(
            RequireLayer::principal(|p| p.app().is_some_and(|a| a.app_id() == "billing"))
                .challenge(Challenge::api_key(http::HeaderName::from_static(
                    "x-api-key",
                )))
                .with_responder(
                    |r: &crate::rejection::Rejection, _: &crate::rejection::RequestHead<'_>| {
                        let mut response = Response::new(bytes::Bytes::from(r.kind().code()));
                        *response.status_mut() = r.kind().status();
                        response
                    },
                ),
        )
        .service(service_fn(move |r: Request<String>| {
            seen.store(true, std::sync::atomic::Ordering::SeqCst);
            echo(r)
        }));
    let refused = service
        .oneshot(request(Some(&["a"]), None, "text/plain"))
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert_eq!(
        refused.into_body().collect().await.unwrap().to_bytes(),
        "forbidden"
    );
    assert!(!called.load(std::sync::atomic::Ordering::SeqCst));
}

#[tokio::test]
async fn extension_predicate() {
    let service = ServiceBuilder::new()
        .layer(RequireLayer::extension(|u: &UserIdentity| {
            u.subject() == Some("alice")
        }))
        .service_fn(echo);
    let ok = service
        .clone()
        .oneshot(request(None, Some(&[]), "text/plain"))
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let missing = service
        .oneshot(request(Some(&[]), None, "text/plain"))
        .await
        .unwrap();
    assert_eq!(missing.status(), 401);
}

#[test]
fn services_and_futures_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<RequireScopesLayer>();
    send_sync::<
        RequireScopes<
            tower::util::BoxCloneSyncService<Request<String>, Response<String>, Infallible>,
        >,
    >();
    send_sync::<ResponseFuture<std::future::Ready<Result<Response<String>, Infallible>>>>();
}
