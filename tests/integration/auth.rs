//! The shared machinery with a toy authenticator, through real axum and tonic servers: proves
//! the wrapped response body works under `Router::layer`, `route_layer` and tonic's `layer`.

use std::future::Ready;

use axum::routing::get;
use axum::{Extension, Router};
use tollgate::auth::{AuthLayer, Authenticator, Identity, Outcome};
use tollgate::rejection::{Challenge, Rejection, RejectionKind};

use crate::support::{HttpClient, ProbeServer, call_whoami, serve_axum, serve_tonic};

#[derive(Clone)]
struct Token;

#[derive(Clone, Debug)]
struct Caller(&'static str);

impl Identity for Caller {
    fn insert_into(self, extensions: &mut http::Extensions) {
        extensions.insert(self);
    }
}

impl Authenticator for Token {
    type Identity = Caller;
    type Future = Ready<Result<Option<Caller>, Rejection>>;

    fn authenticate<B>(&self, request: &http::Request<B>) -> Outcome<Caller, Self::Future> {
        match request.headers().get("x-token").map(|v| v.as_bytes()) {
            None => Outcome::NoCredential,
            Some(b"alice") => Outcome::Authenticated(Caller("alice")),
            // A credential that needs the slow path, to exercise the pending state over a socket.
            Some(b"slow-bob") => Outcome::Pending(std::future::ready(Ok(Some(Caller("bob"))))),
            Some(_) => Outcome::Rejected(
                Rejection::new(RejectionKind::InvalidCredential)
                    .with_challenge(Challenge::api_key(http::HeaderName::from_static("x-token"))),
            ),
        }
    }

    fn challenge(&self) -> Challenge {
        Challenge::api_key(http::HeaderName::from_static("x-token"))
    }
}

async fn whoami(Extension(caller): Extension<Caller>) -> String {
    caller.0.to_owned()
}

async fn maybe(caller: Option<Extension<Caller>>) -> String {
    caller.map_or("anonymous", |c| c.0.0).to_owned()
}

#[tokio::test]
async fn axum_layer_and_route_layer() {
    let router = Router::new()
        .route("/whoami", get(whoami))
        .route_layer(AuthLayer::with_authenticator(Token))
        .merge(
            Router::new()
                .route("/maybe", get(maybe))
                .layer(AuthLayer::with_authenticator(Token).optional()),
        );
    let client = HttpClient::new(serve_axum(router).await);

    let ok = client.get("/whoami", &[("x-token", b"alice")]).await;
    assert_eq!((ok.status.as_u16(), ok.text()), (200, "alice"));
    let slow = client.get("/whoami", &[("x-token", b"slow-bob")]).await;
    assert_eq!((slow.status.as_u16(), slow.text()), (200, "bob"));

    let missing = client.get("/whoami", &[]).await;
    assert_eq!(missing.status, 401);
    assert_eq!(
        missing.header("www-authenticate"),
        Some(r#"ApiKey header="x-token""#)
    );
    assert_eq!(
        missing.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(missing.json()["code"], "missing_credential");

    let bad = client.get("/whoami", &[("x-token", b"mallory")]).await;
    assert_eq!(bad.status, 401);
    assert_eq!(bad.json()["code"], "invalid_credential");
    assert_eq!(
        bad.header("www-authenticate"),
        Some(r#"ApiKey header="x-token", error="invalid_credential""#)
    );

    // route_layer: unknown paths stay 404 rather than 401.
    assert_eq!(client.get("/nowhere", &[]).await.status, 404);

    // Optional mode: no credential passes, a bad one does not.
    let anon = client.get("/maybe", &[]).await;
    assert_eq!((anon.status.as_u16(), anon.text()), (200, "anonymous"));
    assert_eq!(
        client
            .get("/maybe", &[("x-token", b"mallory")])
            .await
            .status,
        401
    );
    assert_eq!(
        client
            .get("/maybe", &[("x-token", b"slow-bob")])
            .await
            .text(),
        "bob"
    );
}

#[tokio::test]
async fn tonic_server_layer() {
    let probe = ProbeServer::new(|ext| ext.get::<Caller>().map_or("?", |c| c.0).to_owned());
    let addr = serve_tonic(AuthLayer::with_authenticator(Token), probe).await;

    assert_eq!(
        call_whoami(addr, &[("x-token", "alice")]).await.unwrap(),
        "alice"
    );
    assert_eq!(
        call_whoami(addr, &[("x-token", "slow-bob")]).await.unwrap(),
        "bob"
    );

    let status = call_whoami(addr, &[]).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    assert_eq!(status.message(), "No credential was sent.");

    let status = call_whoami(addr, &[("x-token", "mallory")])
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    assert_eq!(status.message(), "The credential is not valid.");
}
