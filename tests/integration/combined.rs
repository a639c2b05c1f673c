//! The combined app + user layer: every policy with every credential combination through a
//! real axum server, and its slow path under tower-test. Helpers live in `scopes.rs`.

use axum::Extension;
use axum::Router;
use axum::routing::get;
use serde_json::json;
use tollgate::api_key::ApiKeyLayer;
use tollgate::app_user::{AppUserLayer, Policy};
use tollgate::identity::{AppIdentity, UserIdentity};
use tollgate::principal::EffectiveScopes;
use tollgate::scope::RequireScopesLayer;
use tower::Layer;

use crate::scopes::{NOW, jwt_builder, keys, send, token, token_with};
use crate::support::{HttpClient, serve_axum};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Cred {
    Absent,
    Valid,
    Invalid,
}

#[tokio::test]
async fn every_policy_with_absent_valid_and_invalid_credentials() {
    use Cred::*;
    let keys = keys().await;
    let api_key = ApiKeyLayer::new(keys.keys.clone());
    let jwt = jwt_builder().build().unwrap();
    let policies = [
        ("and", Policy::AppAndUser),
        ("or", Policy::AppOrUser),
        ("app", Policy::AppOnly),
        ("user", Policy::UserOnly),
    ];
    let mut router = Router::new();
    for (path, policy) in policies {
        router = router.route(
            &format!("/{path}"),
            get(
                |principal: Option<Extension<AppIdentity>>,
                 user: Option<Extension<UserIdentity>>| async move {
                    format!(
                        "{}|{}",
                        principal.map_or("-".into(), |a| a.app_id().to_owned()),
                        user.and_then(|u| u.subject().map(str::to_owned))
                            .unwrap_or("-".into())
                    )
                },
            )
            .route_layer(AppUserLayer::from_layers(&api_key, &jwt, policy)),
        );
    }
    let client = HttpClient::new(serve_axum(router).await);
    let good_token = token("alice", json!({}));
    let bad_token = token_with(
        b"another-secret-another-secret-another!!",
        &json!({"sub": "mallory", "exp": NOW + 600}),
    );

    for (path, policy) in policies {
        for app in [Absent, Valid, Invalid] {
            for user in [Absent, Valid, Invalid] {
                let key = match app {
                    Absent => None,
                    Valid => Some(keys.reader.as_str()),
                    Invalid => Some(keys.unknown.as_str()),
                };
                let bearer = match user {
                    Absent => None,
                    Valid => Some(good_token.as_str()),
                    Invalid => Some(bad_token.as_str()),
                };
                let answer =
                    send(&client, http::Method::GET, &format!("/{path}"), key, bearer).await;
                let pass = app != Invalid
                    && user != Invalid
                    && match policy {
                        Policy::AppAndUser => app == Valid && user == Valid,
                        Policy::AppOrUser => app == Valid || user == Valid,
                        Policy::AppOnly => app == Valid,
                        Policy::UserOnly => user == Valid,
                        _ => unreachable!(),
                    };
                let case = format!("{policy:?} app={app:?} user={user:?}: {}", answer.text());
                if pass {
                    assert_eq!(answer.status, 200, "{case}");
                    let want = format!(
                        "{}|{}",
                        if app == Valid { "app-1" } else { "-" },
                        if user == Valid { "alice" } else { "-" }
                    );
                    assert_eq!(answer.text(), want, "{case}");
                } else {
                    assert_eq!(answer.status, 401, "{case}");
                    let code = answer.json()["code"].as_str().unwrap().to_owned();
                    let want = if app == Invalid || user == Invalid {
                        "invalid_credential"
                    } else {
                        "missing_credential"
                    };
                    assert_eq!(code, want, "{case}");
                    assert!(answer.header("www-authenticate").is_some(), "{case}");
                }
            }
        }
    }
}

/// The combined layer's slow path (an uncached key awaits the store while the token is
/// decided at once) must carry the readied inner service with the request: tower-test's mock
/// panics if the fresh clone left behind is called. `RequireScopes` delegates readiness.
#[tokio::test]
async fn combined_slow_path_calls_the_readied_service_and_scopes_delegate_readiness() {
    use tower_test::mock;

    let keys = keys().await;
    let api_key = ApiKeyLayer::new(keys.keys.clone());
    let jwt = jwt_builder().build().unwrap();
    let layer = tower::layer::layer_fn(|inner| {
        AppUserLayer::from_layers(&api_key, &jwt, Policy::AppAndUser).layer(
            RequireScopesLayer::all(["orders:read"])
                .unwrap()
                .effective_scopes(EffectiveScopes::App)
                .layer(inner),
        )
    });
    let (mut service, mut handle) =
        mock::spawn_layer::<http::Request<String>, http::Response<String>, _>(layer);
    handle.allow(0);
    assert!(service.poll_ready().is_pending());
    handle.allow(1);
    assert!(matches!(
        service.poll_ready(),
        std::task::Poll::Ready(Ok(()))
    ));

    let request = http::Request::builder()
        .header("x-api-key", &keys.reader)
        .header(
            "authorization",
            format!("Bearer {}", token("u1", json!({}))),
        )
        .body(String::new())
        .unwrap();
    let response = service.call(request);
    let answer = async {
        let (seen, send) = handle.next_request().await.unwrap();
        assert_eq!(
            seen.extensions().get::<AppIdentity>().unwrap().app_id(),
            "app-1"
        );
        assert_eq!(
            seen.extensions().get::<UserIdentity>().unwrap().subject(),
            Some("u1")
        );
        send.send_response(http::Response::new("created".to_owned()));
    };
    let (response, ()) = tokio::join!(response, answer);
    assert_eq!(response.unwrap().status(), 200);
}
