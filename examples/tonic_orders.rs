//! Seed 000's orders service over gRPC: the same guards as `axum_orders`, in a tonic server.
//!
//! ```text
//! cargo run --example tonic_orders --features full
//! cargo run --example tonic_client --features full   # in another terminal, with KEY and TOKEN
//! ```
//!
//! | method | guard |
//! |---|---|
//! | `orders.Orders/ListOrders` | API key (`x-api-key` metadata) with `orders:read` |
//! | `orders.Orders/CreateOrder` | API key **and** bearer token (`authorization: Bearer …` metadata), `orders:write` in both |
//!
//! Both share one per-key limit. Rejections are gRPC statuses the client reads as such:
//! `UNAUTHENTICATED` for a missing or bad credential, `PERMISSION_DENIED` for a missing scope,
//! `RESOURCE_EXHAUSTED` over the limit,
//! `UNAVAILABLE` when a store is down. The service is written by hand (`prost` derives and
//! `tonic::server::Grpc`, see `examples/common/orders_grpc.rs`), so no `protoc` is needed.
//!
//! Settings are `axum_orders`'s environment variables (its header lists them), except that
//! `TOLLGATE_ADDR` defaults to `127.0.0.1:50051` and keys stay in memory.

#[path = "axum_orders/config.rs"]
#[allow(dead_code)] // shared with axum_orders; the gRPC demo keeps keys in memory
mod config;
#[path = "axum_orders/keys.rs"]
mod keys;
#[path = "common/orders_grpc.rs"]
mod orders_grpc;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use http::{Request, Response};
use tollgate::api_key::{ApiKeyLayer, ApiKeys, InMemoryKeyStore};
use tollgate::app_user::{AppUserLayer, Policy};
use tollgate::identity::{AppIdentity, UserIdentity};
use tollgate::jwt::{KeySet, RevocationList};
use tollgate::rate_limit::RateLimitLayer;
use tollgate::scope::RequireScopesLayer;
use tonic::body::Body;
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic_prost::ProstCodec;
use tower::ServiceBuilder;
use tower::util::BoxCloneSyncService;
use tracing_subscriber::EnvFilter;

use crate::config::Config;
use crate::orders_grpc::{CreateOrderRequest, ListOrdersReply, ListOrdersRequest, Order};

type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;
type Method = BoxCloneSyncService<Request<Body>, Response<Body>, Infallible>;

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,tollgate=debug".into()),
        )
        .init();
    if let Err(message) = run().await {
        eprintln!("tonic_orders: {message}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), String> {
    let config = Config::from_env("127.0.0.1:50051")?;
    let keys = ApiKeys::builder(InMemoryKeyStore::new()).build();
    let demo_key = keys::preload(&keys, &config).await?;
    // This server mints nothing: it verifies the configured key or JWKS URL (for example
    // axum_orders' `/.well-known/jwks.json`).
    let jwt = keys::jwt_layer(&config, KeySet::new(), RevocationList::new()).await?;

    // One layer value, cloned into each method: clones share the counters, so the limit is per
    // key across methods.
    let per_key = RateLimitLayer::new(config.rate_limit).ietf_headers(true);
    let app = ApiKeyLayer::new(keys);
    let app_and_user = AppUserLayer::from_layers(&app, &jwt, Policy::AppAndUser);
    let orders = Orders::default();
    // Per method, in the README's order (with ServiceBuilder the first layer is outermost):
    // auth → scopes → per-key limit → handler.
    let service = OrdersService {
        list: BoxCloneSyncService::new(
            ServiceBuilder::new()
                .map_response(|response: Response<_>| response.map(Body::new))
                .layer(app)
                .layer(scopes(["orders:read"]))
                .layer(per_key.clone())
                .service(unary(ListOrders(orders.clone()))),
        ),
        // Seed 000's POST /orders: the key names the app, the token the user, both required.
        create: BoxCloneSyncService::new(
            ServiceBuilder::new()
                .map_response(|response: Response<_>| response.map(Body::new))
                .layer(app_and_user)
                .layer(scopes(["orders:write"]))
                .layer(per_key)
                .service(unary(CreateOrder(orders))),
        ),
    };

    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|e| format!("binding {}: {e}", config.addr))?;
    println!("orders gRPC service ready on http://{}", config.addr);
    println!();
    println!("  export KEY={}", demo_key.expose());
    println!(
        "  TOLLGATE_GRPC_URL=http://{} cargo run --example tonic_client --features full",
        config.addr
    );
    println!();
    tonic::transport::Server::builder()
        // Guards are per method, above; a server-wide `.layer(…)` would guard every method.
        .add_service(service)
        .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
        .await
        .map_err(|e| format!("serving: {e}"))
}

/// A scope check; these scope lists are fixed, so building one cannot fail.
fn scopes<const N: usize>(all: [&str; N]) -> RequireScopesLayer {
    RequireScopesLayer::all(all).expect("valid scopes")
}

/// The orders placed since start-up.
#[derive(Clone, Default)]
struct Orders(Arc<Mutex<Vec<Order>>>);

/// `orders.Orders`: routes each method to its own guarded stack.
#[derive(Clone)]
struct OrdersService {
    list: Method,
    create: Method,
}

impl NamedService for OrdersService {
    const NAME: &'static str = orders_grpc::SERVICE;
}

impl tower::Service<Request<Body>> for OrdersService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // The method stacks are always ready (they are service_fns under sync-or-async layers
        // that clone-and-swap); each call is driven with `oneshot` below.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        use tower::ServiceExt;
        match request.uri().path() {
            orders_grpc::LIST_ORDERS => Box::pin(self.list.clone().oneshot(request)),
            orders_grpc::CREATE_ORDER => Box::pin(self.create.clone().oneshot(request)),
            _ => Box::pin(async { Ok(tonic::Status::unimplemented("no such method").into_http()) }),
        }
    }
}

/// A tower service that decodes one unary call, runs `method`, and encodes the answer.
fn unary<M, Req>(
    method: M,
) -> impl tower::Service<
    Request<Body>,
    Response = Response<Body>,
    Error = Infallible,
    Future = BoxFuture<Result<Response<Body>, Infallible>>,
> + Clone
+ Send
+ Sync
+ 'static
where
    M: UnaryService<Req> + Clone + Send + Sync + 'static,
    M::Future: Send,
    M::Response: prost::Message + Send + 'static,
    Req: prost::Message + Default + Send + 'static,
{
    tower::service_fn(move |request: Request<Body>| {
        let method = method.clone();
        Box::pin(async move {
            let mut grpc = Grpc::new(ProstCodec::default());
            Ok(grpc.unary(method, request).await)
        }) as BoxFuture<_>
    })
}

#[derive(Clone)]
struct ListOrders(Orders);

impl UnaryService<ListOrdersRequest> for ListOrders {
    type Response = ListOrdersReply;
    type Future = BoxFuture<Result<tonic::Response<ListOrdersReply>, tonic::Status>>;

    fn call(&mut self, request: tonic::Request<ListOrdersRequest>) -> Self::Future {
        // The layers put the identities in the request extensions, as in axum.
        let app_id = request
            .extensions()
            .get::<AppIdentity>()
            .map(|app| app.app_id().to_owned())
            .unwrap_or_default();
        let orders = self.0.0.lock().expect("orders lock").clone();
        Box::pin(async move { Ok(tonic::Response::new(ListOrdersReply { app_id, orders })) })
    }
}

#[derive(Clone)]
struct CreateOrder(Orders);

impl UnaryService<CreateOrderRequest> for CreateOrder {
    type Response = Order;
    type Future = BoxFuture<Result<tonic::Response<Order>, tonic::Status>>;

    fn call(&mut self, request: tonic::Request<CreateOrderRequest>) -> Self::Future {
        let extensions = request.extensions();
        let app_id = extensions
            .get::<AppIdentity>()
            .map(|a| a.app_id().to_owned());
        let user_id = extensions
            .get::<UserIdentity>()
            .and_then(|u| u.subject().map(str::to_owned));
        let new = request.into_inner();
        let mut orders = self.0.0.lock().expect("orders lock");
        let order = Order {
            id: orders.len() as u64 + 1,
            item: new.item,
            quantity: new.quantity.max(1),
            app_id: app_id.unwrap_or_default(),
            user_id: user_id.unwrap_or_default(),
        };
        tracing::info!(user_id = %order.user_id, app_id = %order.app_id, item = %order.item, "order created");
        orders.push(order.clone());
        Box::pin(async move { Ok(tonic::Response::new(order)) })
    }
}
